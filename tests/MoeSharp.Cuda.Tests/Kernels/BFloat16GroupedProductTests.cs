using MoeSharp.Compute;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// On a CUDA GPU (skipped elsewhere): the grouped bfloat16 products (<see cref="BFloat16GemmPath"/>) are the host
/// products of the bfloat16-rounded inputs, within the bfloat16 rounding of the output, for all three product forms,
/// with empty groups and accumulation.
/// </summary>
public class BFloat16GroupedProductTests
{
    [CudaFact]
    public void GroupedProducts_AreTheProductsOfTheRoundedInputs()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        foreach (BFloat16GemmPath path in Enum.GetValues<BFloat16GemmPath>())
        {
            using var kernels = new IlgpuLayerKernels(cuda, bfloat16Products: true, path);
            Assert.Equal(path, kernels.GemmPath);
            Run(cuda, kernels, path);
        }
    }

    private static void Run(IlgpuBackend cuda, IlgpuLayerKernels kernels, BFloat16GemmPath path)
    {
        var host = new HostLayerKernels();
        var r = new Random(11);
        int n = 48,
            k = 40;
        // Balanced groups take the padded batched call; unbalanced ones and empty groups its fallback.
        foreach (
            long[] groups in new[] { new long[] { 30, 32, 29, 31 }, [40], [5, 17, 1, 33], [0, 9, 0, 20], [64, 0, 0, 0] }
        )
        {
            int rows = (int)groups.Sum(),
                e = groups.Length;
            foreach (bool accumulate in new[] { false, true })
            {
                float[] a = Rounded(Random(r, rows * k)),
                    w = Rounded(Random(r, e * n * k)),
                    wt = Rounded(Random(r, e * k * n));
                float[] dy = Rounded(Random(r, rows * n)),
                    start = Random(r, Math.Max(rows * n, e * n * k));
                Check(
                    "GroupedMatMulTransposeB",
                    rows * n,
                    accumulate,
                    groups,
                    start,
                    (kk, c) =>
                        kk.Gemm.GroupedMatMulTransposeB(
                            Up(kk, a, rows, k),
                            Up(kk, w, e, n, k),
                            c,
                            groups,
                            n,
                            k,
                            accumulate
                        ),
                    rows,
                    n
                );
                Check(
                    "GroupedMatMul",
                    rows * n,
                    accumulate,
                    groups,
                    start,
                    (kk, c) =>
                        kk.Gemm.GroupedMatMul(Up(kk, a, rows, k), Up(kk, wt, e, k, n), c, groups, n, k, accumulate),
                    rows,
                    n
                );
                Check(
                    "GroupedMatMulTransposeA",
                    e * n * k,
                    accumulate,
                    groups,
                    start,
                    (kk, c) =>
                        kk.Gemm.GroupedMatMulTransposeA(
                            Up(kk, dy, rows, n),
                            Up(kk, a, rows, k),
                            c,
                            groups,
                            n,
                            k,
                            accumulate
                        ),
                    e * n,
                    k
                );
            }
        }

        void Check(
            string name,
            int count,
            bool accumulate,
            long[] groups,
            float[] start,
            Action<ILayerKernels, Tensor> product,
            int outRows,
            int outColumns
        )
        {
            var expected = Tensor.FromArray(start.AsSpan(0, count).ToArray(), outRows, outColumns);
            product(host, expected);
            Tensor actual = cuda.Kernels.Device.ToDevice(
                Tensor.FromArray(start.AsSpan(0, count).ToArray(), outRows, outColumns)
            );
            product(kernels, actual);
            float[] e = expected.AsSpan<float>().ToArray(),
                got = actual.ToHost().AsSpan<float>().ToArray();
            for (int i = 0; i < e.Length; i++)
            {
                // The product may be rounded once to bfloat16 (8 significant bits) before it is added.
                float productPart = Math.Abs(e[i] - (accumulate ? start[i] : 0f));
                Assert.True(
                    Math.Abs(e[i] - got[i]) <= 1e-4f + (productPart / 128),
                    $"{path} {name} (groups "
                        + $"{string.Join(",", groups)}, accumulate {accumulate}) element {i}: host {e[i]}, device {got[i]}"
                );
            }
        }
    }

    private static float[] Random(Random r, int count) =>
        Enumerable.Range(0, count).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();

    private static float[] Rounded(float[] v) =>
        Tensor.FromArray(v, v.Length).ToBFloat16().ToFloat32().AsSpan<float>().ToArray();

    private static Tensor Up(ILayerKernels kernels, float[] values, params int[] shape)
    {
        var t = Tensor.FromArray(values, shape);
        return kernels is HostLayerKernels ? t : kernels.Dispatch.Device.ToDevice(t);
    }
}
