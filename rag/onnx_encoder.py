"""The int8 encoder: a sentence-transformers model exported once to ONNX, its attention, layer norms
and GELU fused by onnxruntime's transformer optimizer, its weights quantized to int8 per channel
(dynamic activations), and cached on disk.

Why: on a 2-core CPU the fp32 encoder is the whole cost of ingest; int8 matmuls run 1.8× as
fast for the same vectors (cosine ≈ 0.993 to fp32; retrieval figures in the README), and running it
needs only onnxruntime and tokenizers, so a query never imports torch.

Building needs torch, transformers and onnx (all installed with the package) and takes ~20 s once
per model; it happens under a file lock and lands by atomic rename, so concurrent or killed builds
never leave a half-written model.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import RagError

RECIPE = "int8-v2"  # bump when the export or quantization recipe changes: cached models rebuild


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs to know about a sentence-transformers folder."""

    folder: Path
    max_tokens: int
    dim: int
    pooling: str  # "mean" | "cls"
    normalize: bool
    num_heads: int
    hidden: int
    model_type: str

    @classmethod
    def read(cls, folder: str | os.PathLike) -> "ModelInfo":
        f = Path(folder)
        try:
            cfg = json.loads((f / "config.json").read_text())
        except FileNotFoundError:
            raise RagError(f"{f} is not a local sentence-transformers model folder (no config.json); "
                           "give a model folder or set RAG_ENCODER=torch") from None
        st = _json(f / "sentence_bert_config.json")
        modules = _json(f / "modules.json") or []
        pool = {}
        for m in modules:
            if m.get("type", "").endswith("Pooling"):
                pool = _json(f / m.get("path", "1_Pooling") / "config.json")
        pooling = "cls" if pool.get("pooling_mode_cls_token") else "mean"
        if pool and not (pool.get("pooling_mode_cls_token") or pool.get("pooling_mode_mean_tokens")):
            raise RagError(f"the int8 encoder supports mean or CLS pooling only ({f}); set RAG_ENCODER=torch")
        return cls(
            folder=f,
            max_tokens=int(st.get("max_seq_length") or cfg.get("max_position_embeddings", 512)),
            dim=int(pool.get("word_embedding_dimension") or cfg["hidden_size"]),
            pooling=pooling,
            normalize=any(m.get("type", "").endswith("Normalize") for m in modules),
            num_heads=int(cfg.get("num_attention_heads", 12)),
            hidden=int(cfg["hidden_size"]),
            model_type=str(cfg.get("model_type", "bert")),
        )

    def cache_key(self) -> str:
        """Changes when the weights file changes (size, mtime) or the recipe does."""
        import hashlib

        weights = sorted(p for p in self.folder.iterdir() if p.suffix in (".safetensors", ".bin"))
        stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in weights]
        digest = hashlib.sha256(json.dumps([str(self.folder.resolve()), stamp, RECIPE]).encode()).hexdigest()
        return f"{self.folder.name}-{digest[:16]}"


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def cached_model(info: ModelInfo, cache_dir: Path, *, label: str = "", quiet: bool = False) -> Path:
    """Path of the int8 ONNX model for ``info``, building it on first use."""
    out = cache_dir / info.cache_key() / "model.int8.onnx"
    if out.exists():
        return out
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / ".build.lock")):
        if not out.exists():  # another process may have built it while we waited
            if not quiet:
                print(f"preparing the int8 encoder for {label or info.folder.name} in {out.parent} "
                      "(once, ~20 s) …", file=sys.stderr, flush=True)
            build(info, out)
    return out


def build(info: ModelInfo, out: Path) -> None:
    """Export (torch → ONNX, pooling inside the graph), fuse, quantize; write ``out`` atomically."""
    with _root_logger_kept():
        _build(info, out)


@contextmanager
def _root_logger_kept():
    """onnxruntime's quantization package calls ``logging.basicConfig(level=INFO)`` when imported and
    quantize_dynamic logs advice on the root logger: without this, the rest of the process would
    print every library's debug lines (bm25s's among them)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for h in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(h)
        root.setLevel(level)


def _build(info: ModelInfo, out: Path) -> None:
    try:
        import onnx
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers.optimizer import optimize_model
        from transformers import AutoModel
    except ImportError as e:
        raise RagError(f"building the int8 encoder needs {e.name}: pip install onnx torch transformers "
                       "(or set RAG_ENCODER=torch)") from None

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # eager attention exports as plain MatMul/Softmax, the pattern the optimizer fuses into Attention
    model = AutoModel.from_pretrained(str(info.folder), attn_implementation="eager").eval()
    graph = _pooled_module(model, info.pooling, info.normalize)
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw, fused = Path(tmp) / "raw.onnx", Path(tmp) / "fused.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph, (ids, mask), str(raw), input_names=["input_ids", "attention_mask"],
                output_names=["embedding", "tokens"], opset_version=17, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                              "embedding": {0: "batch"}, "tokens": {0: "batch", 1: "seq"}},
            )
        if info.model_type in ("bert", "roberta", "xlm-roberta", "mpnet", "distilbert"):
            opt = optimize_model(str(raw), model_type="bert", num_heads=info.num_heads, hidden_size=info.hidden,
                                 opt_level=1)
            opt.save_model_to_file(str(fused))
        else:
            fused = raw
        tmp_out = Path(tmp) / "model.int8.onnx"
        quantize_dynamic(str(fused), str(tmp_out), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(tmp_out, out)


def _pooled_module(model, pooling: str, normalize: bool):
    """The transformer plus pooling (and normalisation) as one module, so ONNX returns sentence vectors;
    the token states come out too, for vectors of the sentences inside a chunk (rag/embedding.py)."""
    import inspect

    import torch

    typed = "token_type_ids" in inspect.signature(model.forward).parameters

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            extra = {"token_type_ids": torch.zeros_like(input_ids)} if typed else {}
            h = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
            if pooling == "cls":
                v = h[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return (torch.nn.functional.normalize(v, dim=-1) if normalize else v), h

    return Pooled()


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
