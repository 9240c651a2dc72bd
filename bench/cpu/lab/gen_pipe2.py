"""Stop 38 pipeline lab (PipeLab.cs.txt): writes Pipe2.cs, 12 x 32 software-pipelined variants: broadcasts AHEAD rows ahead (AHEAD+1 registers rotating), the next step's
B loaded after row BROW of the current step. Two steps a turn, so no register copies."""
def kernel(name, mr, nv, ahead, brow):
    o = ["[MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]",
         f"public static void {name}(int depth, float* a, float* b, float* c, long ldc) {{"]
    nr = 16 * nv
    regs = [f"x{i}" for i in range(ahead + 1)]
    for r in range(mr):
        o.append("Vector512<float> " + ", ".join(f"c{r}_{v} = default" for v in range(nv)) + ";")
    o.append("Vector512<float> " + ", ".join(f"p{v} = Vector512.Load(b + {16*v})" for v in range(nv)) + ";")
    o.append("Vector512<float> " + ", ".join(f"q{v}" for v in range(nv)) + ";")
    o.append("Vector512<float> " + ", ".join(f"x{i} = Vector512.Create(a[{i}])" if i < ahead else f"x{i}" for i in range(ahead + 1)) + ";")
    o.append(f"float* end = b + (long)depth * {nr};")
    o.append("while (b < end) {")
    for step, (cur, nxt) in enumerate((("p", "q"), ("q", "p"))):
        for r in range(mr):
            g = step * mr + r
            o.append(f"{regs[(g + ahead) % (ahead + 1)]} = Vector512.Create(a[{g + ahead}]);")
            for v in range(nv):
                o.append(f"c{r}_{v} = Vector512.FusedMultiplyAdd({regs[g % (ahead + 1)]}, {cur}{v}, c{r}_{v});")
            if r == brow:
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
print("using System.Runtime.CompilerServices;\nusing System.Runtime.Intrinsics;\nstatic unsafe partial class L {")
print(kernel("P12e", 12, 2, 1, 1))
print(kernel("P12b2", 12, 2, 2, 5))
print(kernel("P12e2", 12, 2, 2, 1))
print(kernel("P12b3", 12, 2, 3, 3))
print("}")
