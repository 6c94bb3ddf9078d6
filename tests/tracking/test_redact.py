"""Redaction: secrets never reach a backend or an artifact; ordinary names and text are left alone."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from insideLLMs.secrets import REDACTED, is_secret_key, redact, redact_text
from insideLLMs.tracking.store import copy_redacted

OPENAI = "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz123456"
ANTHROPIC = "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed"
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
GITHUB = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
AWS = "AKIAIOSFODNN7EXAMPLE"
SLACK = "xoxb-123456789012-abcdefABCDEF"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


SECRET_KEY_NAMES = [
    "api_key", "apiKey", "API_KEY", "x-api-key", "apikey", "openai_api_key", "token", "access_token", "auth_token",
    "hf_token", "HF_TOKEN", "refresh_token", "authToken", "secret", "client_secret", "password", "db_password",
    "passwd", "Authorization", "cookie", "Set-Cookie", "credentials", "private_key", "aws_secret_access_key", "auth",
    "privateKey", "access.key", "secretkey",
]


@pytest.mark.parametrize("key", SECRET_KEY_NAMES)
def test_secret_key_names(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "s3cr3t-value"}) == {key: REDACTED}


@pytest.mark.parametrize("key", SECRET_KEY_NAMES)
def test_the_file_scan_finds_every_secret_key_name(key: str, tmp_path: Path) -> None:
    src = tmp_path / "config.yaml"
    src.write_text(f"model:\n  {key}: s3cr3t-value\n  other: {{\"{key}\": \"s3cr3t-value\", key: 1}}\n")
    copy_redacted(src, tmp_path / "out.yaml")
    out = (tmp_path / "out.yaml").read_text()
    assert "s3cr3t-value" not in out and out.count(REDACTED) == 2 and "key: 1" in out


def test_plain_key_fields_in_scripts_cost_no_redaction_work() -> None:
    from insideLLMs.tracking.store._artifact_copy import _SCANNER, _hits

    if _SCANNER is None:
        pytest.skip("google-re2 is not installed: the fallback scan looks at every 'key'")
    script = b"e.keys=function(z){return z},o={key:1,Keys:2,keyCode:3};a.key=b;" * 1000
    assert _hits(script) == []


@pytest.mark.parametrize(
    "key",
    ["max_tokens", "prompt_tokens", "completion_tokens", "total_tokens", "use_cls_token", "pad_token", "eos_token",
     "tokenizer", "tokenizer_name", "token_count", "max_new_tokens", "key", "example_key", "keyword", "monkey",
     "passed", "model_name", "temperature", "top_p", "author", "secretary_count"],
)
def test_ordinary_key_names_are_kept(key: str) -> None:
    assert not is_secret_key(key)
    assert redact({key: "value"}) == {key: "value"}


def test_numbers_and_flags_under_token_keys_are_kept() -> None:
    data = {"use_cls_token": True, "token": None, "max_tokens": 256, "usage": {"prompt_tokens": 12}}
    assert redact(data) == data
    assert redact({"password": 1234}) == {"password": REDACTED}


@pytest.mark.parametrize("secret", [OPENAI, ANTHROPIC, HF, GITHUB, AWS, SLACK, JWT])
def test_provider_key_values_anywhere(secret: str) -> None:
    data = {"notes": f"the key is {secret} ok", "deep": [{"x": secret}], "tuple": (secret,)}
    out = redact(data)
    text = orjson.dumps(out).decode()
    assert secret not in text
    assert out["notes"] == f"the key is {REDACTED} ok"
    assert out["deep"] == [{"x": REDACTED}]


def test_bearer_and_url_credentials() -> None:
    assert redact_text("Authorization: Bearer abc.def-ghi_jkl") == f"Authorization: {REDACTED}"
    assert redact_text("https://alice:hunter2@db.example.com:5432/x") == f"https://{REDACTED}@db.example.com:5432/x"
    assert redact_text("see postgres://u:p@h/db and http://localhost:5000/x") == (
        f"see postgres://{REDACTED}@h/db and http://localhost:5000/x"
    )


@pytest.mark.parametrize(
    "text",
    ["risk-free task-management for teams", "the sk- prefix", "hf_dataset_name", "https://example.com/a@b",
     "git@github.com:org/repo.git", "alice@example.com", "Bearer", "max_tokens=256", "AKIA is a prefix",
     "eyJ alone", "sk-learn-is-a-library-name-without-digits"],
)
def test_no_false_positive_values(text: str) -> None:
    assert redact_text(text) == text


def test_copy_redacted_yaml_jsonl_html(tmp_path: Path) -> None:
    yaml = tmp_path / "config.resolved.yaml"
    yaml.write_text(
        "model:\n  type: openai\n  args:\n    api_key: abc123notapattern\n    base_url: https://u:pw@api.example.com/v1\n"
        "generation:\n  max_tokens: 256\n  use_cls_token: true\nheaders:\n  Authorization: 'Bearer zzzzzzzzzz'\n"
    )
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text(
        orjson.dumps({"input": {"prompt": f"my key {OPENAI}"}, "usage": {"prompt_tokens": 3}}).decode() + "\n"
        + orjson.dumps({"input": {"prompt": "hello"}, "meta": {"hf_token": "plain"}}).decode() + "\n"
        + orjson.dumps({"input": {"prompt": "untouched"}}).decode() + "\n"
    )
    html = tmp_path / "report.html"
    html.write_text(f"<html><body><pre>{GITHUB}</pre><p>max_tokens: 256</p></body></html>")
    for src in (yaml, jsonl, html):
        dst = tmp_path / ("out_" + src.name)
        copy_redacted(src, dst)
        text = dst.read_text()
        for secret in ("abc123notapattern", "pw@", "zzzzzzzzzz", OPENAI, "plain", GITHUB):
            assert secret not in text, (src.name, text)
    out_yaml = (tmp_path / "out_config.resolved.yaml").read_text()
    assert "max_tokens: 256" in out_yaml and "use_cls_token: true" in out_yaml
    assert f"api_key: {REDACTED}" in out_yaml
    lines = (tmp_path / "out_records.jsonl").read_text().splitlines()
    assert lines[2] == orjson.dumps({"input": {"prompt": "untouched"}}).decode()  # untouched lines are byte-identical
    assert orjson.loads(lines[0])["usage"] == {"prompt_tokens": 3}


def test_binary_files_are_copied_as_is(tmp_path: Path) -> None:
    src = tmp_path / "plot.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    copy_redacted(src, tmp_path / "copy.png")
    assert (tmp_path / "copy.png").read_bytes() == src.read_bytes()


def test_pem_private_key_block(tmp_path: Path) -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234abcd\nQWERTYzxcv5678\n-----END RSA PRIVATE KEY-----"
    assert redact({"cert": f"before\n{pem}\nafter"}) == {"cert": f"before\n{REDACTED}\nafter"}
    src = tmp_path / "notes.txt"
    src.write_text(f"line one\n{pem}\nline two\n")
    copy_redacted(src, tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == f"line one\n{REDACTED}\nline two\n"


@pytest.mark.slow
def test_large_clean_jsonl_is_copied_byte_for_byte(tmp_path: Path) -> None:
    rows = [{"example_id": f"e{i}", "input": {"prompt": "What is the capital of France?"}, "output": "Paris",
             "usage": {"prompt_tokens": 7, "completion_tokens": 1}, "author": "monkey@example.com" if i % 100 == 0 else None}
            for i in range(20_000)]
    src = tmp_path / "records.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    copy_redacted(src, tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_bytes() == src.read_bytes()


@pytest.mark.slow
def test_secrets_inside_a_huge_minified_line_are_found(tmp_path: Path) -> None:
    """report.html inlines megabytes of JS on one line: it is redacted in windows around each hit."""
    filler = "function(a){return a.key?a.token:null};var x={tokens:1,author:2};" * 40_000  # ~2.6 MB, one line
    secrets = [OPENAI, HF, GITHUB, AWS, SLACK, JWT]
    line = filler + "".join(f'var s{i}="{s}";' + filler[:5000] for i, s in enumerate(secrets))
    line += 'cfg={"api_key": "plain-secret-value", url: "https://bob:pa55@db.example.com/x"};' + filler
    src = tmp_path / "report.html"
    src.write_text(f"<html><script>{line}</script></html>\n")
    digest = copy_redacted(src, tmp_path / "out.html")
    out = (tmp_path / "out.html").read_text()
    for secret in (*secrets, "plain-secret-value", "pa55"):
        assert secret not in out
    assert f'"api_key": "{REDACTED}"' in out and f"https://{REDACTED}@db.example.com/x" in out
    assert out.count(filler) == line.count(filler) + 0  # everything else is kept as it was
    import hashlib

    assert digest == hashlib.sha256((tmp_path / "out.html").read_bytes()).hexdigest()


def test_clean_big_file_is_copied_as_is_with_its_hash(tmp_path: Path) -> None:
    import hashlib

    src = tmp_path / "records.jsonl"
    src.write_bytes(b"".join(orjson.dumps({"example_id": f"e{i}", "passed": True, "usage": {"prompt_tokens": 3}})
                             + b"\n" for i in range(100_000)))
    digest = copy_redacted(src, tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_bytes() == src.read_bytes()
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()


def test_dumps_redacted_walks_only_suspect_rows() -> None:
    from insideLLMs.secrets import dumps_redacted

    clean = {"input.prompt": "What is 2+2?", "max_tokens": 5, "passed": True}
    assert dumps_redacted(clean) == orjson.dumps(clean)
    dirty = {"output": f"here: {OPENAI}", "meta.api_key": "abc", "max_tokens": 5}
    assert orjson.loads(dumps_redacted(dirty)) == {"output": f"here: {REDACTED}", "meta.api_key": REDACTED,
                                                   "max_tokens": 5}


@pytest.mark.slow
def test_the_fallback_scan_without_re2_redacts_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without google-re2 installed the scan uses substring hints; the files come out the same."""
    from insideLLMs.tracking.store import _artifact_copy as redact_files

    monkeypatch.setattr(redact_files, "_SCANNER", None)
    for i, test in enumerate((test_copy_redacted_yaml_jsonl_html, test_pem_private_key_block,
                              test_secrets_inside_a_huge_minified_line_are_found,
                              test_large_clean_jsonl_is_copied_byte_for_byte)):
        (tmp_path / str(i)).mkdir()
        test(tmp_path / str(i))


def test_a_real_report_page_survives_redaction_intact(tmp_path: Path) -> None:
    """The inlined chart library is program text (`credentials:e.credentials`, `token:`), not secrets:
    the tracked copy of report.html must stay a working page, while a key in model output is still caught."""
    from insideLLMs import ProbeRunner, PromptSet, get_model, get_probe

    runner = ProbeRunner(get_model("dummy"), get_probe("factuality"), run_dir=tmp_path / "run")
    runner.run(PromptSet.from_list([{"id": "a", "prompt": "Capital of France?", "answer": "Paris"},
                                    {"id": "b", "prompt": f"echo {OPENAI}", "answer": "x"}]))
    report = tmp_path / "run" / "report.html"
    copy_redacted(report, tmp_path / "copy.html")
    original, copied = report.read_bytes(), (tmp_path / "copy.html").read_bytes()
    assert OPENAI.encode() in original and OPENAI.encode() not in copied
    assert copied == original.replace(OPENAI.encode(), REDACTED.encode())


def real_report(tmp_path: Path, prompt: str) -> Path:
    from insideLLMs import ProbeRunner, PromptSet, get_model, get_probe

    runner = ProbeRunner(get_model("dummy"), get_probe("factuality"), run_dir=tmp_path / "run")
    runner.run(PromptSet.from_list([{"id": "a", "prompt": prompt, "answer": "x"}]))
    return tmp_path / "run" / "report.html"


def test_only_the_plotly_bundle_of_a_report_goes_unscanned(tmp_path: Path) -> None:
    """The scan skips the bytes of report.html that are, byte for byte, the installed plotly package's
    plotly.js (4.6 MB of the page); everything else is scanned, wherever the bundle sits."""
    import hashlib

    from insideLLMs.report.page import plotly_js
    from insideLLMs.tracking.store._public_content import plotly_bundle, public_spans

    assert plotly_bundle() == plotly_js() and len(plotly_bundle()) > 1_000_000  # the package's file, not ours
    report = real_report(tmp_path, f"echo {OPENAI}")
    raw = report.read_bytes()
    [(start, end)] = public_spans(raw, ".html")
    assert raw[start:end] == plotly_bundle()
    assert OPENAI.encode() in raw[end:]  # the secret is in the page's own part
    assert public_spans(raw, ".jsonl") == []
    digest = copy_redacted(report, tmp_path / "copy.html")
    copied = (tmp_path / "copy.html").read_bytes()
    assert copied == raw.replace(OPENAI.encode(), REDACTED.encode())
    assert digest == hashlib.sha256(copied).hexdigest()

    # another layout (the bundle further in): still skipped, the rest scanned
    moved = b"<!-- a page of another layout -->" + raw
    (tmp_path / "moved.html").write_bytes(moved)
    copy_redacted(tmp_path / "moved.html", tmp_path / "moved-copy.html")
    assert (tmp_path / "moved-copy.html").read_bytes() == moved.replace(OPENAI.encode(), REDACTED.encode())

    # a secret planted inside the bundle: no longer the package's file, so scanned whole
    bundle_at = raw.find(plotly_bundle())
    tampered = raw[:bundle_at + 1000] + f'var k="{ANTHROPIC}";'.encode() + raw[bundle_at + 1000:]
    assert public_spans(tampered, ".html") == []
    (tmp_path / "tampered.html").write_bytes(tampered)
    digest = copy_redacted(tmp_path / "tampered.html", tmp_path / "tampered-copy.html")
    copied = (tmp_path / "tampered-copy.html").read_bytes()
    assert ANTHROPIC.encode() not in copied and OPENAI.encode() not in copied
    assert digest == hashlib.sha256(copied).hexdigest()


def test_a_secret_looking_string_in_the_public_bundle_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Public program text that happens to look like a key (a plotly.js release with a token-shaped
    string, say) is not "redacted": that would break every tracked report page. The same string in the
    page's own part is."""
    from insideLLMs.tracking.store import _public_content

    bundle = b"/* plotly.js */ var demo={api_key:'" + GITHUB.encode() + b"'};" + b"function f(a){return a}" * 20_000
    fake = tmp_path / "plotly" / "package_data" / "plotly.min.js"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(bundle)
    monkeypatch.setattr(_public_content, "plotly_bundle", lambda: fake.read_bytes())
    page = b"<html><head><script>" + bundle + b"</script></head><body>" + GITHUB.encode() + b"</body></html>\n"
    (tmp_path / "report.html").write_bytes(page)
    copy_redacted(tmp_path / "report.html", tmp_path / "copy.html")
    copied = (tmp_path / "copy.html").read_bytes()
    assert copied.startswith(b"<html><head><script>" + bundle + b"</script>")  # the bundle as it was
    assert copied.endswith(b"<body>" + REDACTED.encode() + b"</body></html>\n")  # the page's own part redacted


def test_a_replaced_only_file_is_hard_linked_when_clean_and_copied_when_not(tmp_path: Path) -> None:
    """report.html is only ever replaced, never changed in place: a clean one is hard-linked (no second
    5 MB copy); one with a secret is a redacted copy; on another filesystem it is copied."""
    import hashlib
    import os

    clean = real_report(tmp_path / "clean", "What is 2 plus 2?")
    digest = copy_redacted(clean, tmp_path / "linked.html", link=True)
    assert (tmp_path / "linked.html").stat().st_ino == clean.stat().st_ino
    assert digest == hashlib.sha256(clean.read_bytes()).hexdigest()
    copy_redacted(clean, tmp_path / "copied.html")  # without link=True: a copy of its own
    assert (tmp_path / "copied.html").stat().st_ino != clean.stat().st_ino

    secret = real_report(tmp_path / "secret", f"echo {OPENAI}")
    copy_redacted(secret, tmp_path / "redacted.html", link=True)
    assert (tmp_path / "redacted.html").stat().st_ino != secret.stat().st_ino
    assert OPENAI.encode() not in (tmp_path / "redacted.html").read_bytes()

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem here")
    other = shm / f"insidellms-test-{os.getpid()}.html"
    try:
        assert copy_redacted(clean, other, link=True) == digest and other.read_bytes() == clean.read_bytes()
    finally:
        other.unlink(missing_ok=True)
