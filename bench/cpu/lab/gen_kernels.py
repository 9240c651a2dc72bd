# Generates Kernels.cs: variant micro-kernels for the lab.
def kernel(name, mr, nv, pf_a=0, pf_b=0, embed=False, pf_b2=False):
    L = []
    L.append("[MethodImpl(MethodImplOptions.AggressiveOptimization)]")
    L.append(f"public static unsafe void {name}(int depth, float* a, float* b, float* c, long ldc, bool load)")
    L.append("{")
    for r in range(mr):
        for v in range(nv):
            L.append(f"    Vector512<float> c{r}_{v} = load ? Vector512.Load(c + {r} * ldc + {16*v}) : Vector512<float>.Zero;")
    L.append("    for (int p = 0; p < depth; p++)")
    L.append("    {")
    if pf_a: L.append(f"        Sse.Prefetch0(a + {pf_a});")
    if pf_b: L.append(f"        Sse.Prefetch0(b + {pf_b});")
    if pf_b2: L.append(f"        Sse.Prefetch0(b + {pf_b + 16});")
    for v in range(nv):
        L.append(f"        Vector512<float> b{v} = Vector512.Load(b + {16*v});")
    for r in range(mr):
        if embed:
            for v in range(nv):
                L.append(f"        c{r}_{v} = Avx512F.FusedMultiplyAdd(Vector512.Create(a[{r}]), b{v}, c{r}_{v});")
        else:
            L.append(f"        Vector512<float> a{r} = Vector512.Create(a[{r}]);")
            for v in range(nv):
                L.append(f"        c{r}_{v} = Vector512.FusedMultiplyAdd(a{r}, b{v}, c{r}_{v});")
    L.append(f"        a += {mr}; b += {16*nv};")
    L.append("    }")
    for r in range(mr):
        for v in range(nv):
            L.append(f"    c{r}_{v}.Store(c + {r} * ldc + {16*v});")
    L.append("}")
    return "\n".join(L)
src = ["using System.Runtime.CompilerServices;", "using System.Runtime.Intrinsics;", "using System.Runtime.Intrinsics.X86;",
       "public static class Kernels", "{"]
src.append(kernel("K12x32", 12, 2))
src.append(kernel("K12x32pa", 12, 2, pf_a=12*16))
src.append(kernel("K12x32pab", 12, 2, pf_a=12*16, pf_b=32*8))
src.append(kernel("K12x32e", 12, 2, embed=True))
src.append(kernel("K12x32pab2", 12, 2, pf_a=12*16, pf_b=32*8, pf_b2=True))
src.append(kernel("K12x32pab2n", 12, 2, pf_a=12*16, pf_b=32*4, pf_b2=True))
src.append(kernel("K14x32", 14, 2))
src.append(kernel("K14x32pa", 14, 2, pf_a=14*16))
src.append(kernel("K6x64", 6, 4))
src.append(kernel("K6x64pb", 6, 4, pf_b=64*4))
src.append(kernel("K8x48", 8, 3))
src.append("}")
open("Kernels.cs", "w").write("\n".join(src))
