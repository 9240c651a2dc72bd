"""Stop 38 pipeline lab (PipeLab.cs.txt): writes Pipe.cs, the software-pipelined micro-kernels MKL's schedule
suggested: each row's broadcast issued AHEAD rows before its FMAs (AHEAD + 1 registers in turn), the next step's B
vectors loaded after row BROW into a second set of registers, two steps a turn so no register is copied; and
Ahead12x32, whose broadcasts run one row ahead within a step only. Usage: python3 gen_pipe.py > Pipe.cs"""


def fmas(r, nv, reg, b):
    return [f"c{r}_{v} = Vector512.FusedMultiplyAdd({reg}, {b}{v}, c{r}_{v});" for v in range(nv)]


def head(name, mr, nv):
    o = ["[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]",
         f"public static void {name}(int depth, float* a, float* b, float* c, long ldc) {{"]
    for r in range(mr):
        o.append("Vector512<float> " + ", ".join(f"c{r}_{v} = default" for v in range(nv)) + ";")
    o.append(f"float* end = b + (long)depth * {16 * nv};")
    return o


def tail(mr, nv):
    o = [f"a += {2 * mr};", f"b += {2 * 16 * nv};", "}"]
    o += [f"c{r}_{v}.Store(c + {r} * ldc + {16 * v});" for r in range(mr) for v in range(nv)]
    return o + ["}"]


def kernel(name, mr, nv, ahead, brow):
    nr = 16 * nv
    regs = [f"x{i}" for i in range(ahead + 1)]
    o = head(name, mr, nv)
    o.append("Vector512<float> " + ", ".join(f"p{v} = Vector512.Load(b + {16 * v})" for v in range(nv)) + ";")
    o.append("Vector512<float> " + ", ".join(f"q{v}" for v in range(nv)) + ";")
    o.append("Vector512<float> " + ", ".join(
        f"x{i} = Vector512.Create(a[{i}])" if i < ahead else f"x{i}" for i in range(ahead + 1)) + ";")
    o.append("while (b < end) {")
    for step, (cur, nxt) in enumerate((("p", "q"), ("q", "p"))):
        for r in range(mr):
            g = step * mr + r
            o.append(f"{regs[(g + ahead) % (ahead + 1)]} = Vector512.Create(a[{g + ahead}]);")
            o += fmas(r, nv, regs[g % (ahead + 1)], cur)
            if r == brow:
                o += [f"{nxt}{v} = Vector512.Load(b + {(step + 1) * nr + 16 * v});" for v in range(nv)]
    return "\n".join(o + tail(mr, nv))


def ahead_within_step(name, mr, nv):
    o = head(name, mr, nv)
    o.append("while (b < end) {")
    for step in range(2):
        o.append("{")
        o.append("Vector512<float> " + ", ".join(
            f"b{v} = Vector512.Load(b + {step * 16 * nv + 16 * v})" for v in range(nv)) + ";")
        o.append(f"Vector512<float> x = Vector512.Create(a[{step * mr}]), y;")
        for r in range(mr):
            use, load = ("x", "y") if r % 2 == 0 else ("y", "x")
            if r + 1 < mr:
                o.append(f"{load} = Vector512.Create(a[{step * mr + r + 1}]);")
            o += fmas(r, nv, use, "b")
        o.append("}")
    return "\n".join(o + tail(mr, nv))


print("using System.Runtime.CompilerServices;\nusing System.Runtime.Intrinsics;\nstatic unsafe partial class L {")
print(ahead_within_step("Ahead12x32", 12, 2))
print(kernel("Pipe12x32", 12, 2, 1, 5))
print(kernel("Pipe8x48", 8, 3, 1, 3))
print(kernel("P12e", 12, 2, 1, 1))
print(kernel("P12b2", 12, 2, 2, 5))
print(kernel("P12e2", 12, 2, 2, 1))
print(kernel("P12b3", 12, 2, 3, 3))
print("}")
