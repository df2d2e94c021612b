"""Faster kernels for fair-esm's ESM-2, patched in by class swap (fair-esm's files are untouched).

* :func:`to_half`: ``model.half()`` with the rotary frequency tables kept exact in float32;
* :func:`use_sdpa`: self-attention through PyTorch's fused ``scaled_dot_product_attention``.

Used by :class:`nesscan.esm2.ESM2Embedder`; both are tested against fair-esm's own path in
``tests/test_esm2.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import NesscanError

class _RotaryFp32Tables:
    """Mixin for fair-esm's ``RotaryEmbedding`` under ``model.half()``: the cos/sin tables are
    computed in float32 (from a float32 ``inv_freq``) and only then cast to the activations'
    dtype. Computed in float16, position x frequency loses ~0.5 rad near position 1000."""

    def _update_cos_sin_tables(self, x, seq_dimension=1):
        seq_len = x.shape[seq_dimension]
        if (
            seq_len != self._seq_len_cached
            or self._cos_cached is None
            or self._cos_cached.device != x.device
            or self._cos_cached.dtype != x.dtype
        ):
            self._seq_len_cached = seq_len
            inv_freq = self.inv_freq.to(device=x.device, dtype=torch.float32)
            t = torch.arange(seq_len, device=x.device, dtype=torch.float32)
            freqs = torch.einsum("i,j->ij", t, inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            self._cos_cached = emb.cos()[None, :, :].to(x.dtype)
            self._sin_cached = emb.sin()[None, :, :].to(x.dtype)
        return self._cos_cached, self._sin_cached


_FP32_TABLE_CLASSES: dict[type, type] = {}


def to_half(model: torch.nn.Module) -> torch.nn.Module:
    """``model.half()`` keeping the rotary frequencies and tables exact (see :class:`_RotaryFp32Tables`)."""
    from esm.rotary_embedding import RotaryEmbedding

    rotary = [m for m in model.modules() if isinstance(m, RotaryEmbedding)]
    inv32 = [m.inv_freq.detach().float().clone() for m in rotary]
    model.half()
    for m, inv in zip(rotary, inv32):
        m.inv_freq = inv  # registered buffer: stays float32, still follows .to(device)
        m._seq_len_cached, m._cos_cached, m._sin_cached = None, None, None
        if not isinstance(m, _RotaryFp32Tables):
            cls = type(m)
            if cls not in _FP32_TABLE_CLASSES:
                _FP32_TABLE_CLASSES[cls] = type(f"{cls.__name__}Fp32Tables", (_RotaryFp32Tables, cls), {})
            m.__class__ = _FP32_TABLE_CLASSES[cls]
    return model


class _SdpaAttention:
    """Mixin for fair-esm's ``MultiheadAttention`` in ESM-2: the attention product through
    :func:`torch.nn.functional.scaled_dot_product_attention` (see :func:`use_sdpa`).

    Same arithmetic as fair-esm's explicit path up to the product itself: the same q/k/v
    projections, ``q *= scaling`` before the rotary embedding (so SDPA runs with
    ``scale=1.0``, never scaling twice), the same ``self.rot_emb(q, k)`` call on
    ``(bsz * heads, len, head_dim)`` tensors, the key-padding mask (``True`` = padding) as a
    boolean "may attend" mask of shape ``(bsz, 1, 1, src_len)``, and ``out_proj``. Returns
    ``(attn, None)``: ESM-2's ``TransformerLayer`` always asks for ``need_weights`` but
    ``ESM2.forward`` only uses a layer's weights under ``need_head_weights`` (attention maps,
    contacts), and then, like any other call this path does not cover (incremental state,
    ``attn_mask``, ``before_softmax``, bias_kv / zero attention, dropout in training), the
    call goes to fair-esm's own ``forward`` unchanged."""

    def forward(self, query, key, value, key_padding_mask=None, incremental_state=None, need_weights=True,
                static_kv=False, attn_mask=None, before_softmax=False, need_head_weights=False):
        if (
            need_head_weights
            or before_softmax
            or incremental_state is not None
            or static_kv
            or attn_mask is not None
            or key is None
            or value is None
            or self.rot_emb is None
            or self.bias_k is not None
            or self.add_zero_attn
            or (self.training and self.dropout > 0)
            or self.onnx_trace
        ):
            return super().forward(
                query, key, value, key_padding_mask=key_padding_mask, incremental_state=incremental_state,
                need_weights=need_weights, static_kv=static_kv, attn_mask=attn_mask,
                before_softmax=before_softmax, need_head_weights=need_head_weights,
            )
        tgt_len, bsz, embed_dim = query.size()
        assert embed_dim == self.embed_dim
        src_len = key.size(0)
        heads, head_dim = self.num_heads, self.head_dim
        q = self.q_proj(query)
        k = self.k_proj(key)
        v = self.v_proj(value)
        q *= self.scaling  # as fair-esm: scaled before the rotary embedding, hence scale=1.0 below
        q = q.view(tgt_len, bsz * heads, head_dim).transpose(0, 1)
        k = k.view(src_len, bsz * heads, head_dim).transpose(0, 1)
        v = v.view(src_len, bsz * heads, head_dim).transpose(0, 1)
        q, k = self.rot_emb(q, k)
        q = q.unflatten(0, (bsz, heads))  # (bsz, heads, len, head_dim)
        k = k.unflatten(0, (bsz, heads))
        v = v.unflatten(0, (bsz, heads))
        mask = None
        if key_padding_mask is not None and key_padding_mask.dim() > 0:
            assert key_padding_mask.shape == (bsz, src_len)
            mask = ~key_padding_mask.to(torch.bool).view(bsz, 1, 1, src_len)  # True: may attend
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False, scale=1.0)
        attn = attn.permute(2, 0, 1, 3).reshape(tgt_len, bsz, embed_dim)
        return self.out_proj(attn), None


_SDPA_CLASSES: dict[type, type] = {}


def use_sdpa(model: torch.nn.Module) -> int:
    """Run an ESM-2 model's self-attention through PyTorch's ``scaled_dot_product_attention``;
    returns the number of attention modules switched (idempotent: already switched ones count).

    Why: fair-esm computes attention explicitly (``bmm``, a masked fill, softmax in float32,
    ``bmm``), materialising a ``(bsz * heads) x len x len`` score tensor and its float32 softmax
    per layer. SDPA dispatches to fused kernels instead: on CUDA FlashAttention (batches without
    padding) or the memory-efficient kernel (which takes the key-padding mask), both with an
    online softmax accumulated in float32 and no ``len x len`` weights in memory; on CPU a
    fused flash-style kernel. Results equal fair-esm's to float rounding (tested on CPU in
    float32 against ``sdpa=False``).

    Only fair-esm's ``ESM2`` is accepted (rotary attention without bias_kv, as every ESM-2);
    each layer's ``self_attn`` gets its class swapped to a subclass with :class:`_SdpaAttention`
    mixed in; fair-esm's files are not touched, and calls the fused path does not cover
    (attention maps, contacts) still run fair-esm's own ``forward``.
    """
    from esm.model.esm2 import ESM2
    from esm.multihead_attention import MultiheadAttention

    if not isinstance(model, ESM2):
        raise NesscanError(f"use_sdpa() takes a fair-esm ESM-2 model, not {type(model).__name__}")
    switched = 0
    for m in model.modules():
        if not isinstance(m, MultiheadAttention) or m.rot_emb is None:
            continue
        if not isinstance(m, _SdpaAttention):
            cls = type(m)
            if cls not in _SDPA_CLASSES:
                _SDPA_CLASSES[cls] = type(f"{cls.__name__}Sdpa", (_SdpaAttention, cls), {})
            m.__class__ = _SDPA_CLASSES[cls]
        switched += 1
    return switched


__all__ = ["to_half", "use_sdpa"]
