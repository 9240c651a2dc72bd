#!/usr/bin/env bash
# Stop 43, call A: stop 42's call C as written (its script unchanged, .device laid out as bench/cpu/lab/README.md,
# "Stop 42", says), on a one-GPU H100 machine: `timeout 330 bash .device/go-c.sh`.
exec bash "$(dirname "$0")/h200-host-stop42c-go.sh" "$@"
