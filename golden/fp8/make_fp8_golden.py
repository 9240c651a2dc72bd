#!/usr/bin/python3
"""Writes the FP8 row-quantisation reference files of golden/fp8/ (kind `fp8_rows`).

An independent float64 implementation of the rule in docs/fp8-and-telemetry.md, written from the format's definition:
E4M3FN (bias 7, 3 mantissa bits, subnormals, no infinities, NaN = S.1111.111, max 448); one power-of-two scale per
row per 128 columns, the smallest 2^e (e >= -126) with amax <= 448 * 2^e over the block's finite elements (1 when
there is none); codes are x / scale rounded to the nearest E4M3 value, ties to the even code; NaN and +-Infinity give
the NaN code with the input's sign. It shares no code with MoeSharp: the nearest value is found by searching the list
of the 127 finite magnitudes, the exponent by a float64 loop.

Run with Debian's python (numpy, torch 1.13): /usr/bin/python3 golden/fp8/make_fp8_golden.py [OUTPUT_DIR]
The output is deterministic (fixed seeds); SHA256SUMS in this folder lists the committed files.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

BLOCK = 128
# The finite non-negative E4M3 magnitudes, indexed by code 0x00..0x7E.
MAGNITUDES = np.array(
    [(c & 7) * 2.0 ** -9 if c >> 3 == 0 else (1 + (c & 7) / 8) * 2.0 ** ((c >> 3) - 7) for c in range(0x7F)])


def encode(y):
    """E4M3 codes of float64 values y (already divided by the scale, so |y| <= 448 or y is not finite)."""
    codes = np.zeros(y.shape, dtype=np.uint8)
    flat, out = y.reshape(-1), codes.reshape(-1)
    for i, v in enumerate(flat):
        sign = 0x80 if math.copysign(1.0, v) < 0 else 0
        if not math.isfinite(v):
            out[i] = sign | 0x7F
            continue
        m = abs(v)
        if m >= 448.0:
            out[i] = sign | 0x7E
            continue
        hi = int(np.searchsorted(MAGNITUDES, m))  # MAGNITUDES[hi - 1] < m <= MAGNITUDES[hi]
        if MAGNITUDES[hi] == m:
            code = hi
        else:
            lo = hi - 1
            below, above = m - MAGNITUDES[lo], MAGNITUDES[hi] - m
            code = lo if below < above else hi if above < below else (lo if lo % 2 == 0 else hi)
        out[i] = sign | code
    return codes


def decode(codes):
    """float64 values of E4M3 codes (NaN for the NaN codes)."""
    mag = np.where((codes & 0x7F) == 0x7F, np.nan, MAGNITUDES[np.minimum(codes & 0x7F, 0x7E)])
    return np.where(codes & 0x80, -mag, mag)


def block_scale(amax):
    if amax == 0.0:
        return 1.0
    e = -126
    while amax > 448.0 * 2.0 ** e:
        e += 1
    return 2.0 ** e


def quantise(x):
    """x: float64 [R, D] (exact copies of float32/bfloat16 inputs) -> codes uint8 [R, D], scales float64 [R, S]."""
    rows, dim = x.shape
    per_row = -(-dim // BLOCK)
    codes = np.zeros((rows, dim), dtype=np.uint8)
    scales = np.zeros((rows, per_row))
    for r in range(rows):
        for b in range(per_row):
            block = x[r, b * BLOCK:(b + 1) * BLOCK]
            finite = block[np.isfinite(block)]
            scale = block_scale(float(np.max(np.abs(finite))) if finite.size else 0.0)
            scales[r, b] = scale
            codes[r, b * BLOCK:(b + 1) * BLOCK] = encode(block / scale)
    return codes, scales


def dequantise(codes, scales):
    dim = codes.shape[1]
    expanded = np.repeat(scales, BLOCK, axis=1)[:, :dim]
    return decode(codes) * expanded  # exact in float64, and exact in float32 unless it overflows


def special_rows(dim):
    """Rows that hit the rules' corners: ties, subnormal codes, zeros, non-finite, tiny and huge blocks."""
    assert dim >= 2 * BLOCK
    r = np.zeros((4, dim), dtype=np.float32)
    # Block 0 of row 0: amax 448 (scale 1), then exact ties and neighbours of ties.
    ties = [448.0, 1.0625, 1.1875, -1.0625, 3 * 2.0 ** -10, 5 * 2.0 ** -10, 15 * 2.0 ** -10, 2.0 ** -10, -0.0,
            float(np.nextafter(np.float32(1.0625), np.float32(2))), 240.0, 248.0, 0.0]
    r[0, :len(ties)] = ties
    # Block 1 of row 0: amax just above 448 * 2^-3, so the scale steps up and 448 * 2^-4 lands on a tie.
    r[0, BLOCK:BLOCK + 3] = [np.nextafter(np.float32(56.0), np.float32(100)), 3.5, -28.0]
    # Row 1: non-finite elements among finite ones, and a block of nothing finite.
    r[1, :6] = [np.inf, -np.inf, np.nan, 3.0, -7.0, 0.5]
    r[1, BLOCK:2 * BLOCK] = np.nan
    r[1, 2 * BLOCK - 1] = -np.inf
    # Row 2: a block of float32 subnormals and tiny normals (the scale clamps at 2^-126), and huge values.
    r[2, :4] = [1e-45, -3e-41, 1.2e-38, 5e-36]
    r[2, BLOCK:BLOCK + 3] = [3.0e38, -1.5e38, 1.0]
    # Row 3: all zeros except negative zeros (scale 1, codes 0x00/0x80).
    r[3, 1::3] = -0.0
    return r


def random_rows(rng, rows, dim):
    magnitude = 2.0 ** rng.uniform(-14, 14, size=(rows, dim))
    sign = np.where(rng.integers(0, 2, size=(rows, dim)) == 0, 1.0, -1.0)
    x = (sign * magnitude).astype(np.float32)
    x[rng.integers(0, 40, size=(rows, dim)) == 0] = 0.0
    return x


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, dtype name, shape, raw little-endian bytes)."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def make_file(path, dtype, blocks):
    tensors = []
    for i, x32 in enumerate(blocks):
        if dtype == "bfloat16":
            xb = torch.from_numpy(x32).to(torch.bfloat16)  # round to nearest even, like MoeSharp's BFloat16
            raw = xb.view(torch.int16).numpy().astype("<i2").tobytes()
            x64 = xb.to(torch.float64).numpy()
            tensors.append((f"x.b{i}", "BF16", x32.shape, raw))
        else:
            x64 = x32.astype(np.float64)
            tensors.append((f"x.b{i}", "F32", x32.shape, x32.astype("<f4").tobytes()))
        codes, scales = quantise(x64)
        with np.errstate(over="ignore"):
            deq = dequantise(codes, scales).astype(np.float32)  # overflow to +-inf is the documented edge
        tensors.append((f"codes.b{i}", "F8_E4M3", codes.shape, codes.tobytes()))
        tensors.append((f"scales.b{i}", "F32", scales.shape, scales.astype("<f4").tobytes()))
        tensors.append((f"deq.b{i}", "F32", deq.shape, deq.astype("<f4").tobytes()))
    metadata = {
        "kind": "fp8_rows", "dtype": dtype, "blocks": str(len(blocks)), "format": "e4m3fn",
        "block_columns": str(BLOCK), "scale_rule": "pow2_ceil_amax_over_448_min_2^-126_zero_is_1",
        "generator": "golden/fp8/make_fp8_golden.py (float64, independent of MoeSharp)",
    }
    write_safetensors(path, tensors, metadata)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(18)
    f32_blocks = [special_rows(300), random_rows(rng, 5, 200), random_rows(rng, 2, 7168), random_rows(rng, 3, 1),
                  random_rows(rng, 0, 128)]
    bf16_blocks = [special_rows(256), random_rows(rng, 4, 384), random_rows(rng, 1, 7168)]
    make_file(os.path.join(out, "fp8_rows_f32.safetensors"), "float32", f32_blocks)
    make_file(os.path.join(out, "fp8_rows_bf16.safetensors"), "bfloat16", bf16_blocks)


if __name__ == "__main__":
    main()
