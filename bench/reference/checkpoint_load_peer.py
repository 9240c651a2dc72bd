#!/usr/bin/python3
"""Peer of `moe layer`'s load for a side-by-side time: a one-layer Qwen3-MoE-layout BF16 checkpoint
(D 2048, H 768, E 16: 151 MB), and numpy doing the same work as MoeSharp's loader: read the header, then each
tensor by offset, widen BF16 to float32 into preallocated memory. Prints the median of 5 loads in this process, and
the first load alone (fresh memory, like one `moe layer` process) with --once.

  /usr/bin/python3 bench/reference/checkpoint_load_peer.py /tmp/ckbench      # writes /tmp/ckbench/ckpt, times numpy
  moe layer --checkpoint /tmp/ckbench/ckpt --layer 0 --tokens 4              # prints MoeSharp's load time
"""
import json
import os
import struct
import sys
import time

import numpy as np

D, H, E = 2048, 768, 16


def make(folder):
    os.makedirs(folder, exist_ok=True)
    config = {"model_type": "qwen3_moe", "hidden_size": D, "moe_intermediate_size": H, "num_experts": E,
              "num_experts_per_tok": 4, "norm_topk_prob": True, "num_hidden_layers": 1, "decoder_sparse_step": 1,
              "mlp_only_layers": []}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    names = [("model.layers.0.mlp.gate.weight", [E, D])]
    for i in range(E):
        for proj, shape in (("gate_proj", [H, D]), ("up_proj", [H, D]), ("down_proj", [D, H])):
            names.append((f"model.layers.0.mlp.experts.{i}.{proj}.weight", shape))
    header, offset = {}, 0
    for name, shape in names:
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    block = (np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        left = offset
        while left > 0:
            n = min(left // 2, block.size)
            f.write(block[:n].tobytes())
            left -= 2 * n


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = np.empty(sum(int(np.prod(v["shape"])) for v in header.values()), dtype=np.float32)
        pos = 0
        for v in header.values():
            count = int(np.prod(v["shape"]))
            f.seek(base + v["data_offsets"][0])
            raw = np.fromfile(f, dtype=np.uint16, count=count)
            out[pos : pos + count] = (raw.astype(np.uint32) << 16).view(np.float32)
            pos += count
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--once"]
    root = args[0] if args else "/tmp/ckbench"
    folder = os.path.join(root, "ckpt")
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        make(folder)
    once = "--once" in sys.argv
    times = []
    for _ in range(1 if once else 5):
        start = time.perf_counter()
        load(os.path.join(folder, "model.safetensors"))
        times.append(time.perf_counter() - start)
    if once:
        print(f"numpy load (first in a fresh process): {times[0] * 1000:.1f} ms")
    else:
        print(f"numpy load: median {sorted(times)[2] * 1000:.1f} ms of {[round(t * 1000, 1) for t in times]}")
