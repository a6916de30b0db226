"""The tiny pair: tokenizer and template, training determinism, the shipped weights and manifest,
and spec §8.5 on the shipped pair (threshold 0 = small only, threshold 10 = base only)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tenfold.errors import AssetError, ConfigError, UnknownNameError  # noqa: E402
from tenfold.llm import GPTConfig, TinyGPT, TinyGPTBackend  # noqa: E402
from tenfold.systems.specreason import pair as pair_mod  # noqa: E402
from tenfold.systems.specreason.config import SpecReasonConfig  # noqa: E402
from tenfold.systems.specreason.loop import SpecReason, judge_messages, step_messages, vanilla  # noqa: E402
from tenfold.systems.specreason.pair import (  # noqa: E402
    GENERATION_PROMPT,
    PairTrainConfig,
    PhraseTokenizer,
    _judge_sampler,
    check_out_dir,
    corrupt_step,
    finish_pair,
    judge_example,
    load_pair,
    load_pair_models,
    pair_dir,
    render_chat,
    trace_example,
    train_pair,
    train_steps,
    verify_manifest,
)
from tenfold.systems.specreason.prompts import JUDGE_INSTRUCTION, MATH_PROMPT, SEP, math_prompt  # noqa: E402
from tenfold.systems.specreason.tasks import generate, held_out  # noqa: E402

PROBLEMS = generate(20, seed=5)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


# -- tokenizer and template ------------------------------------------------------------------------
def test_tokenizer_round_trips_and_makes_fixed_strings_one_token() -> None:
    tok = PhraseTokenizer.default()
    for p in PROBLEMS:
        for text in (p.text, p.solution, math_prompt(p.text)):
            assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(JUDGE_INSTRUCTION)) == 1
    assert len(tok.encode(MATH_PROMPT.split("{problem}")[0])) == 1
    assert tok.encode(SEP) == [tok.stoi[SEP]]
    assert [tok.token_text(i) for i in tok.encode("1234")] == ["1", "2", "3", "4"]
    assert PhraseTokenizer.from_dict(json.loads(json.dumps(tok.to_dict()))).itos == tok.itos


def test_prompt_tokens_are_a_prefix_of_every_longer_call() -> None:
    """Prefix KV reuse needs each step and judge prompt's tokens to extend the previous ones."""
    tok = PhraseTokenizer.default()
    for p in PROBLEMS[:5]:
        prompt = math_prompt(p.text)
        for i in range(len(p.steps)):
            messages, flags = step_messages(prompt, p.steps[:i])
            step_ids = tok.encode(render_chat(messages, **flags))
            judge = render_chat(judge_messages(prompt, p.steps[:i], p.steps[i]), add_generation_prompt=False,
                                continue_final_message=True)
            assert tok.encode(judge)[: len(step_ids)] == step_ids


def test_template_matches_the_backend_and_keeps_earlier_thinking() -> None:
    tok = PhraseTokenizer.default()
    model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=1, n_embd=8))
    backend = TinyGPTBackend(model, tok, generation_prompt=GENERATION_PROMPT)
    p = PROBLEMS[0]
    prompt = math_prompt(p.text)
    first, flags = step_messages(prompt, [])
    assert backend.render_chat(first, **flags) == render_chat(first, **flags)
    assert render_chat(first, **flags).endswith("<|assistant|>\n<think>")
    later, flags = step_messages(prompt, p.steps[:2])
    text = backend.render_chat(later, **flags)
    assert text == render_chat(later, **flags)
    assert text.endswith("<|assistant|>\n<think>" + p.steps[0] + SEP + p.steps[1] + SEP)
    judge = judge_messages(prompt, p.steps[:2], p.steps[2])
    rendered = backend.render_chat(judge, add_generation_prompt=False, continue_final_message=True)
    assert p.steps[0] in rendered and p.steps[1] in rendered and rendered.endswith("quality score is: ")


def test_training_examples_weight_the_right_tokens() -> None:
    tok = PhraseTokenizer.default()
    p = PROBLEMS[1]
    ids, w = trace_example(p, tok)
    assert tok.decode([i for i, x in zip(ids, w, strict=True) if x]) == p.solution
    assert ids[-1] == tok.eos_id
    bad = corrupt_step(p, 1, random.Random(0))
    ids, w = judge_example(p, 1, bad, 2, tok)
    assert tok.decode([i for i, x in zip(ids, w, strict=True) if x]) == p.steps[0] + SEP + "2"
    assert bad not in tok.decode([i for i, x in zip(ids, w, strict=True) if x])
    ids20, w20 = judge_example(p, 1, bad, 2, tok, digit_weight=20.0)
    assert ids20 == ids and w20 == [*w[:-1], 20.0] and w[-1] == 1.0


def test_corruptions_always_differ_from_the_reference() -> None:
    rng = random.Random(3)
    for p in generate(200, seed=9):
        for i in range(len(p.steps)):
            assert corrupt_step(p, i, rng) != p.steps[i]


def test_fifty_seeded_training_steps_are_deterministic() -> None:
    tok = PhraseTokenizer.default()
    problems = generate(64, seed=1)

    def run() -> tuple[list[float], list[torch.Tensor]]:
        model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, block_size=160, n_layer=1, n_head=2, n_embd=16), seed=4)
        rng = random.Random(7)

        def batch(_step: int) -> list[tuple[list[int], list[float]]]:
            return [trace_example(problems[rng.randrange(len(problems))], tok) for _ in range(4)]

        losses, _ = train_steps(model, batch, 50, 3e-3)
        return losses, [p.detach().clone() for p in model.parameters()]

    a, b = run(), run()
    assert a[0] == b[0] and a[0][-1] < a[0][0]
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1], strict=True))


def test_train_config_validates_and_round_trips() -> None:
    cfg = PairTrainConfig()
    assert PairTrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="small_error_band"):
        PairTrainConfig(small_error_band=(0.3, 0.1))
    with pytest.raises(ConfigError, match="base_steps"):
        PairTrainConfig(base_steps=0)
    with pytest.raises(ConfigError, match="refine_threads"):
        PairTrainConfig(refine_threads=-1)
    with pytest.raises(ConfigError, match="calib_reject_weight"):
        PairTrainConfig(calib_reject_weight=0.0)
    with pytest.raises(ConfigError, match="calib_steps"):
        PairTrainConfig(calib_steps=-1)
    with pytest.raises(ConfigError, match="pool_onpolicy_share"):
        PairTrainConfig(pool_onpolicy_share=1.5)
    with pytest.raises(ConfigError, match="pool_problems"):
        PairTrainConfig(pool_problems=-1)
    with pytest.raises(ConfigError, match="pool_rounds"):
        PairTrainConfig(pool_rounds=-1)
    with pytest.raises(ConfigError, match="pool_lr"):
        PairTrainConfig(pool_lr=0.0)


def test_calibration_weights_only_the_wrong_steps_labels() -> None:
    tok = PhraseTokenizer.default()
    train = generate(50, seed=5)
    sample = _judge_sampler(train, [], 0.0, random.Random(1), tok, digit_weight=40.0, reject_weight=4.0)
    seen = set()
    for _ in range(200):
        ids, w = sample()
        label = tok.decode([ids[-1]])
        seen.add((label, w[-1]))
    assert seen == {("9", 40.0), *((str(d), 160.0) for d in range(4))}


# -- the shipped pair ------------------------------------------------------------------------------
def test_shipped_pair_matches_its_manifest() -> None:
    path = pair_dir("arith-v1")
    manifest = verify_manifest(path)
    assert manifest["name"] == "arith-v1" and manifest["seed"] == 0
    assert set(manifest["files"]) == {"small.pt", "base.pt", "tokenizer.json"}
    assert sum(f.stat().st_size for f in path.iterdir()) < 10 * 2**20
    pair = load_pair_models("arith-v1")
    assert pair.small.num_params() == manifest["params"]["small"]
    assert pair.base.num_params() == manifest["params"]["base"]
    assert pair.small.num_params() < pair.base.num_params() / 5
    assert {"base_step_accuracy", "small_step_accuracy", "judge_auroc_synthetic"} <= set(manifest["metrics"])
    assert "complete" not in manifest  # written before the field existed: counts as complete, and loads


def test_a_hash_mismatch_names_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "pair"
    shutil.copytree(pair_dir("arith-v1"), copy)
    data = bytearray((copy / "base.pt").read_bytes())
    data[-100] ^= 0xFF
    (copy / "base.pt").write_bytes(bytes(data))
    with pytest.raises(AssetError, match=r"base\.pt has sha256 .* but the manifest expects"):
        load_pair_models(copy)
    with pytest.raises(UnknownNameError, match=r"^unknown specreason pair 'nope'; known: arith-v1$"):
        pair_dir("nope")


def test_unknown_names_and_directories_without_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError) as err:
        load_pair("nosuch")
    assert str(err.value) == "unknown specreason pair 'nosuch'; known: arith-v1"
    assert (err.value.kind, err.value.name, err.value.known) == ("specreason pair", "nosuch", ["arith-v1"])
    with pytest.raises(AssetError) as missing:
        load_pair(tmp_path)
    assert str(missing.value) == (f"{tmp_path} lacks manifest.json, so it is not a specreason pair directory; "
                                  "train a pair into it with: tenfold specreason train-pair -o DIR")
    with pytest.raises(AssetError) as gone:
        load_pair(tmp_path / "gone")
    assert str(gone.value) == (f"specreason pair directory {tmp_path / 'gone'} does not exist; "
                               "train a pair into it with: tenfold specreason train-pair -o DIR")


def _greedy(threshold: float) -> SpecReasonConfig:
    return SpecReasonConfig(threshold=threshold, temperature=0.0, token_budget=256, step_max_tokens=48)


def test_threshold_0_is_small_only_and_10_is_base_only_on_the_shipped_pair() -> None:
    """Spec §8.5, at temperature 0 on the shipped pair."""
    small, base = load_pair()
    for p in held_out(4, seed=77, exclude=set()):
        only_small = vanilla(small, p.text, config=_greedy(0), source="small")
        r0 = SpecReason(small, base, _greedy(0)).solve(p.text)
        assert all(s.accepted and s.source == "small" for s in r0.steps)
        assert r0.text == SEP.join(s.text for s in only_small.steps[: len(r0.steps)])
        assert r0.answer == only_small.answer
        only_base = vanilla(base, p.text, config=_greedy(0), source="base")
        r10 = SpecReason(small, base, _greedy(10)).solve(p.text)
        assert all(s.accepted is False and s.source == "base" for s in r10.steps)
        assert r10.text == SEP.join(s.text for s in only_base.steps[: len(r10.steps)])
        assert r10.answer == only_base.answer


@pytest.mark.parametrize("field,value", [("threshold", -0.5), ("threshold", 10.5), ("token_budget", 0),
                                         ("step_max_tokens", 0), ("first_n_base", -1)])
def test_bad_loop_values_raise_config_error(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        SpecReasonConfig(**{field: value})  # type: ignore[arg-type]


def test_the_whole_training_pipeline_runs_every_stage_on_a_tiny_config(tmp_path: Path) -> None:
    shape = GPTConfig(vocab_size=1, block_size=256, n_layer=1, n_head=2, n_embd=16)
    cfg = PairTrainConfig(small=shape, base=shape, train_problems=200, small_max_steps=2, small_eval_every=1,
                          small_first_eval=100, small_batch=2, small_refine_steps=0, base_steps=2,
                          base_batch_traces=1, base_batch_judge=1, base_refine_steps=2, judge_refine_steps=2,
                          judge_batch_traces=1, judge_batch_judge=2, calib_steps=3, onpolicy_problems=2,
                          pool_rounds=2, pool_steps=2, pool_problems=3, eval_problems=2, refine_threads=1)
    lines: list[str] = []
    manifest = train_pair(tmp_path / "pair", cfg, name="tiny", log=lines.append)
    assert manifest["metrics"]["base_refine_steps"] == 2
    assert manifest["metrics"]["judge_refine_steps"] == 2
    assert manifest["metrics"]["calib_steps"] == 3
    assert manifest["metrics"]["pool_steps"] == 4 and manifest["stage2e_round0"]["pool_steps"] == 2
    assert manifest["stage2c"]["judge_refine_steps"] == 2 and "stage2ab" in manifest
    assert manifest["stage2d"]["calib_steps"] == 3
    assert PairTrainConfig.from_dict(manifest["config"]) == cfg
    assert [line.split(":")[0] for line in lines if "on-policy drafts" in line] == [
        "on-policy drafts", "judge refine", "judge calibrate", "judge pool 0", "judge pool 1"]
    verify_manifest(tmp_path / "pair")
    assert manifest["complete"] is True


_TINY_SHAPE = GPTConfig(vocab_size=1, block_size=256, n_layer=1, n_head=2, n_embd=16)
_TINY = PairTrainConfig(small=_TINY_SHAPE, base=_TINY_SHAPE, train_problems=200, small_max_steps=2,
                        small_eval_every=1, small_first_eval=100, small_batch=2, small_refine_steps=0, base_steps=2,
                        base_batch_traces=1, base_batch_judge=1, base_refine_steps=1, judge_refine_steps=1,
                        judge_batch_traces=1, judge_batch_judge=1, calib_steps=1, onpolicy_problems=2,
                        eval_problems=2, refine_threads=1, seed=2)


def test_an_interrupted_training_leaves_a_pair_that_load_pair_refuses(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 1 saves with "complete": false; load_pair refuses it until finish_pair has run."""
    out = tmp_path / "pair"

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pair_mod, "finish_pair", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_pair(out, _TINY, name="tiny")
    monkeypatch.undo()
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    with pytest.raises(AssetError) as err:
        load_pair(out)
    assert str(err.value) == (
        f'{out} holds an unfinished specreason pair (manifest.json says "complete": false: train-pair stopped '
        f"before its final save); finish it with finish_pair(Path('{out}')) from tenfold.systems.specreason.pair "
        "(stage 2 from the saved files, with the config in the manifest), or train it again with: "
        f"tenfold specreason train-pair -o {out}")
    with pytest.raises(AssetError, match="unfinished specreason pair"):
        load_pair_models(out)
    stage1 = load_pair_models(out, allow_unfinished=True)  # what stage 2 loads
    assert "stage2ab" not in stage1.manifest
    manifest = finish_pair(out)  # the config comes from the manifest
    assert manifest["complete"] is True and PairTrainConfig.from_dict(manifest["config"]) == _TINY
    assert manifest["metrics"]["base_refine_steps"] == 1
    small, base = load_pair(out)
    assert small.name == "tiny:small" and base.name == "tiny:base"


def test_train_pair_checks_its_output_directory_before_training(tmp_path: Path) -> None:
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    lines: list[str] = []
    with pytest.raises(ConfigError) as err:
        train_pair(foreign, _TINY, log=lines.append)
    assert str(err.value) == (f"config field 'out' = {str(foreign)!r}: exists and is not a specreason pair "
                              "directory; choose an empty or new directory")
    assert lines == [] and (foreign / "thesis.tex").read_text() == "keep me"
    shipped = tmp_path / "copy"
    shutil.copytree(pair_dir("arith-v1"), shipped)
    assert check_out_dir(shipped) == shipped  # an earlier pair may be replaced
    (shipped / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError) as extra:
        check_out_dir(shipped)
    assert str(extra.value) == (f"config field 'out' = {str(shipped)!r}: holds a specreason pair but also "
                                "notes.txt, which saving the pair would delete; choose an empty or new directory")
    (tmp_path / "empty").mkdir()
    assert check_out_dir(tmp_path / "empty") == tmp_path / "empty"
    assert check_out_dir(tmp_path / "new" / "pair") == tmp_path / "new" / "pair"


def test_a_long_problem_stops_on_context_with_the_tiny_pair() -> None:
    """The pair's window is 256 tokens: the first draft runs into it, so the loop stops on
    ``context`` before the judge call that would not fit (it used to raise BackendError)."""
    small, base = load_pair()
    problem = "Start with 17. " + ", ".join(["Add 1"] + ["add 1"] * 29) + ", then add 2. What is the result?"
    messages, flags = step_messages(math_prompt(problem), [])
    prompt_tokens = small.count_tokens(small.render_chat(messages, **flags))
    r = SpecReason(small, base, SpecReasonConfig(temperature=0.0)).solve(problem)
    assert (r.stop_reason, r.steps, r.answer, r.judge_calls) == ("context", [], None, 0)
    assert r.small_tokens == small.context_window - prompt_tokens == 256 - 134
