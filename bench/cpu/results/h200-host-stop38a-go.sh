# .device/mkl/sample.py was bench/cpu/lab/mkl_sample.py
set -x
mkdir -p /tmp/o
python3 -c "import torch; print(torch.__version__, torch.backends.mkl.is_available()); print(torch.__config__.show())" 2>&1 | head -30
which gdb objdump perf gcc
for lay in nt nn tn; do taskset -c 2 python3 .device/mkl/sample.py /tmp/o $lay; done
ls -la /tmp/o
tar -C /tmp -cf $OUT/mkl.tar o
