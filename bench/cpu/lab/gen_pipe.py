"""Stop 38 pipeline lab (PipeLab.cs.txt): writes Pipe.cs, software-pipelined micro-kernels (MKL's schedule: the next row's broadcast issued before this row's FMAs,
the next step's B vectors loaded mid-step into a second set of registers), two steps a turn so no register copies."""
def kernel(name, mr, nv):
    o = []
    o.append("[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]")
    o.append(f"public static void {name}(int depth, float* a, float* b, float* c, long ldc) {{")
    nr = 16 * nv
    for r in range(mr):
        o.append("Vector512<float> " + ", ".join(f"c{r}_{v} = default" for v in range(nv)) + ";")
    o.append("Vector512<float> " + ", ".join(f"p{v} = Vector512.Load(b + {16*v})" for v in range(nv)) + ";")
    o.append("Vector512<float> " + ", ".join(f"q{v}" for v in range(nv)) + ";")
    o.append("Vector512<float> x = Vector512.Create(a[0]), y;")
    o.append(f"float* end = b + (long)depth * {nr};")
    o.append("while (b < end) {")
    for step, (cur, nxt) in enumerate((("p", "q"), ("q", "p"))):
        for r in range(mr):
            use, load = ("x", "y") if r % 2 == 0 else ("y", "x")
            # next broadcast: row r+1 of this step, or row 0 of the next step
            idx = step * mr + r + 1
            o.append(f"{load} = Vector512.Create(a[{idx}]);")
            for v in range(nv):
                o.append(f"c{r}_{v} = Vector512.FusedMultiplyAdd({use}, {cur}{v}, c{r}_{v});")
            if r == mr // 2 - 1:
                for v in range(nv):
                    o.append(f"{nxt}{v} = Vector512.Load(b + {(step + 1) * nr + 16 * v});")
    o.append(f"a += {2 * mr};")
    o.append(f"b += {2 * nr};")
    o.append("}")
    for r in range(mr):
        for v in range(nv):
            o.append(f"c{r}_{v}.Store(c + {r} * ldc + {16 * v});")
    o.append("}")
    return "\n".join(o)

def ahead(name, mr, nv):
    """B loaded at the step's start, each row's broadcast one row ahead within the step only."""
    o = ["[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]",
         f"public static void {name}(int depth, float* a, float* b, float* c, long ldc) {{"]
    nr = 16 * nv
    for r in range(mr):
        o.append("Vector512<float> " + ", ".join(f"c{r}_{v} = default" for v in range(nv)) + ";")
    o.append(f"float* end = b + (long)depth * {nr};")
    o.append("while (b < end) {")
    for step in range(2):
        o.append("{")
        o.append("Vector512<float> " + ", ".join(f"b{v} = Vector512.Load(b + {step * nr + 16*v})" for v in range(nv)) + ";")
        o.append(f"Vector512<float> x = Vector512.Create(a[{step * mr}]), y;")
        for r in range(mr):
            use, load = ("x", "y") if r % 2 == 0 else ("y", "x")
            if r + 1 < mr:
                o.append(f"{load} = Vector512.Create(a[{step * mr + r + 1}]);")
            for v in range(nv):
                o.append(f"c{r}_{v} = Vector512.FusedMultiplyAdd({use}, b{v}, c{r}_{v});")
        o.append("}")
    o.append(f"a += {2 * mr};")
    o.append(f"b += {2 * nr};")
    o.append("}")
    for r in range(mr):
        for v in range(nv):
            o.append(f"c{r}_{v}.Store(c + {r} * ldc + {16 * v});")
    o.append("}")
    return "\n".join(o)

print("using System.Runtime.CompilerServices;\nusing System.Runtime.Intrinsics;\nstatic unsafe partial class L {")
print(ahead("Ahead12x32", 12, 2))
print(kernel("Pipe12x32", 12, 2))
print(kernel("Pipe8x48", 8, 3))
print("}")
