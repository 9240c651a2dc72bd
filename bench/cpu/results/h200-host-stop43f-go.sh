#!/usr/bin/env bash
# Stop 43, call F (not run: no machine was lent): call B's GEMM beside MKL (three rounds on every core, five on cores
# 2-3, about 250 s) again, now with the benchmark's operands in the library's 64-byte-aligned tensors. Lay out .device
# with `bash bench/cpu/prepare-device.sh`, then run `bash bench/cpu/results/h200-host-stop43f-go.sh` with carry
# [".device"].
exec bash "$(dirname "$0")/h100-host-stop43b-go.sh"
