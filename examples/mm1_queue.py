"""An M/M/1 queue on tenfold's discrete-event loop, checked against queueing theory.

Customers arrive as a Poisson process (rate lam) and one server works at rate mu; the mean
time in system of an M/M/1 queue is 1 / (mu - lam). Run: python examples/mm1_queue.py
"""

from __future__ import annotations

import numpy as np

from tenfold.core.sim import Environment, ProcessGenerator, Resource


def simulate(lam: float, mu: float, customers: int, seed: int) -> float:
    """Mean time in system over ``customers`` arrivals."""
    env = Environment()
    server = Resource(env, capacity=1)
    rng = np.random.default_rng(seed)
    times: list[float] = []

    def customer() -> ProcessGenerator:
        arrived = env.now
        yield server.request()
        yield env.timeout(float(rng.exponential(1.0 / mu)))
        server.release()
        times.append(env.now - arrived)

    def source() -> ProcessGenerator:
        for _ in range(customers):
            env.process(customer())
            yield env.timeout(float(rng.exponential(1.0 / lam)))

    env.process(source())
    env.run()
    return float(np.mean(times))


def main() -> None:
    mu = 1.0
    print("load  simulated  theory")
    for lam in (0.3, 0.5, 0.7):
        sim = simulate(lam, mu, customers=20_000, seed=7)
        print(f"{lam:4.1f}  {sim:9.3f}  {1.0 / (mu - lam):6.3f}")


if __name__ == "__main__":
    main()
