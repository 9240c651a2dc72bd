using System.Runtime.InteropServices;
using MoeSharp.Cuda.Cublas;
using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>cuBLAS grouped GEMMs against a host reference. Run on the GPU machine; skipped elsewhere.</summary>
public class CublasGpuTests
{
    private const int Device = 0;

    private static Tensor Upload<T>(T[] values, DType dtype, int[] shape, List<CudaDeviceBuffer> owned)
        where T : unmanaged
    {
        var buffer = new CudaDeviceBuffer(Device, (long)values.Length * Marshal.SizeOf<T>());
        owned.Add(buffer);
        buffer.CopyFromHost(MemoryMarshal.AsBytes(values.AsSpan()), 0);
        return Tensor.OnDevice(buffer, dtype, shape);
    }

    private static float[] Download(Tensor tensor)
    {
        var values = new float[tensor.ElementCount];
        tensor.DeviceBuffer!.CopyToHost(0, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Host reference in double: out[r, j] = Σ_p a[r, p] · w[e(r), j, p].</summary>
    private static double[] Reference(float[] a, float[] w, int[] rows, int n, int k)
    {
        var output = new double[rows.Sum() * n];
        int row = 0;
        for (int e = 0; e < rows.Length; e++)
        for (int i = 0; i < rows[e]; i++, row++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int p = 0; p < k; p++)
                sum += (double)a[row * k + p] * w[(e * n + j) * k + p];
            output[row * n + j] = sum;
        }
        return output;
    }

    private static (float[] A, float[] W) Inputs(int[] rows, int n, int k, int seed, bool roundToBFloat16)
    {
        var random = new Random(seed);
        float Next() =>
            roundToBFloat16 ? (float)(BFloat16)(float)(random.NextDouble() - 0.5) : (float)(random.NextDouble() - 0.5);
        float[] a = Enumerable.Range(0, rows.Sum() * k).Select(_ => Next()).ToArray();
        float[] w = Enumerable.Range(0, rows.Length * n * k).Select(_ => Next()).ToArray();
        return (a, w);
    }

    [NativeCudaFact(Cublas = true)]
    public void Float32_PerExpertAndGrouped_MatchTheHost()
    {
        foreach (bool grouped in new[] { false, true })
        {
            int[] rows = [5, 0, 17, 1];
            const int n = 24,
                k = 40;
            (float[] a, float[] w) = Inputs(rows, n, k, seed: 1, roundToBFloat16: false);
            var owned = new List<CudaDeviceBuffer>();
            try
            {
                CudaRuntime.Shared.SetDevice(Device);
                using var gemm = new CublasGroupedGemm(Device, stream: 0, useGroupedBatched: grouped);
                Tensor routed = Upload(a, DType.Float32, [rows.Sum(), k], owned);
                Tensor weights = Upload(w, DType.Float32, [rows.Length, n, k], owned);
                Tensor output = Upload(new float[rows.Sum() * n], DType.Float32, [rows.Sum(), n], owned);
                gemm.Run(routed, weights, output, rows);
                CudaRuntime.Shared.StreamSynchronize(0);
                float[] got = Download(output);
                double[] expected = Reference(a, w, rows, n, k);
                for (int i = 0; i < got.Length; i++)
                    Assert.Equal(expected[i], got[i], 1e-4);
            }
            finally
            {
                owned.ForEach(b => b.Dispose());
            }
        }
    }

    [NativeCudaFact(Cublas = true)]
    public void BFloat16Inputs_Float32Output_MatchTheHost()
    {
        int[] rows = [3, 8, 0, 2];
        const int n = 16,
            k = 64;
        (float[] a, float[] w) = Inputs(rows, n, k, seed: 2, roundToBFloat16: true);
        var owned = new List<CudaDeviceBuffer>();
        try
        {
            CudaRuntime.Shared.SetDevice(Device);
            using var gemm = new CublasGroupedGemm(Device, stream: 0);
            Tensor routed = Upload(a.Select(x => (BFloat16)x).ToArray(), DType.BFloat16, [rows.Sum(), k], owned);
            Tensor weights = Upload(w.Select(x => (BFloat16)x).ToArray(), DType.BFloat16, [rows.Length, n, k], owned);
            Tensor output = Upload(new float[rows.Sum() * n], DType.Float32, [rows.Sum(), n], owned);
            gemm.Run(routed, weights, output, rows);
            CudaRuntime.Shared.StreamSynchronize(0);
            float[] got = Download(output);
            double[] expected = Reference(a, w, rows, n, k);
            // Inputs are exact bfloat16 values and products accumulate in float32: only accumulation rounding differs.
            for (int i = 0; i < got.Length; i++)
                Assert.Equal(expected[i], got[i], 1e-3);
        }
        finally
        {
            owned.ForEach(b => b.Dispose());
        }
    }

    [NativeCudaFact(Cublas = true)]
    public void RowMajorGrouped_AllThreeProducts_Accumulating_MatchTheHost()
    {
        // Three groups of different row counts, each product kind, float32 values and bfloat16 values (in float32
        // storage, on the tensor cores), C starting from ones and accumulated into.
        int[] rows = [7, 1, 12];
        const int n = 24,
            k = 40;
        foreach (bool bf16 in new[] { false, true })
        {
            var random = new Random(bf16 ? 4 : 3);
            float Next() =>
                bf16 ? (float)(BFloat16)(float)(random.NextDouble() - 0.5) : (float)(random.NextDouble() - 0.5);
            float[] x = Enumerable.Range(0, rows.Sum() * k).Select(_ => Next()).ToArray(); // [R, k]
            // [G, n, k] or [G, k, n]
            float[] w = Enumerable.Range(0, rows.Length * n * k).Select(_ => Next()).ToArray();
            float[] dy = Enumerable.Range(0, rows.Sum() * n).Select(_ => Next()).ToArray(); // [R, n]
            var owned = new List<CudaDeviceBuffer>();
            try
            {
                CudaRuntime.Shared.SetDevice(Device);
                using var gemm = new CublasRowMajorGemm(0, () => CudaRuntime.Shared.SetDevice(Device));
                Tensor Up(float[] v) => Upload(v, DType.Float32, [v.Length], owned);
                nint P(Tensor t) => DevicePointers.Of(t, "t").Pointer;
                const int size = sizeof(float);
                Tensor px = Up(x),
                    pw = Up(w),
                    pdy = Up(dy);
                Tensor forward = Upload(
                    Enumerable.Repeat(1f, rows.Sum() * n).ToArray(),
                    DType.Float32,
                    [rows.Sum() * n],
                    owned
                );
                Tensor backward = Upload(
                    Enumerable.Repeat(1f, rows.Sum() * k).ToArray(),
                    DType.Float32,
                    [rows.Sum() * k],
                    owned
                );
                Tensor weightGrad = Upload(
                    Enumerable.Repeat(1f, rows.Length * n * k).ToArray(),
                    DType.Float32,
                    [rows.Length * n * k],
                    owned
                );
                var f = new List<GemmProblem>();
                var b = new List<GemmProblem>();
                var g = new List<GemmProblem>();
                int start = 0;
                for (int e = 0; e < rows.Length; start += rows[e], e++)
                {
                    f.Add(
                        CublasRowMajorGemm.TransposeBProblem(
                            P(px) + start * k * size,
                            P(pw) + e * n * k * size,
                            P(forward) + start * n * 4,
                            rows[e],
                            n,
                            k
                        )
                    );
                    b.Add(
                        CublasRowMajorGemm.TimesProblem(
                            P(pdy) + start * n * size,
                            P(pw) + e * n * k * size,
                            P(backward) + start * k * 4,
                            rows[e],
                            k,
                            n
                        )
                    );
                    g.Add(
                        CublasRowMajorGemm.TransposeAProblem(
                            P(pdy) + start * n * size,
                            P(px) + start * k * size,
                            P(weightGrad) + e * n * k * 4,
                            n,
                            k,
                            rows[e]
                        )
                    );
                }
                gemm.Grouped(f.ToArray(), accumulate: true, bf16);
                gemm.Grouped(b.ToArray(), accumulate: true, bf16);
                gemm.Grouped(g.ToArray(), accumulate: true, bf16);
                CudaRuntime.Shared.StreamSynchronize(0);
                float[] gotForward = Download(forward),
                    gotBackward = Download(backward),
                    gotWeightGrad = Download(weightGrad);
                double tolerance = bf16 ? 1e-3 : 1e-4;
                start = 0;
                for (int e = 0; e < rows.Length; start += rows[e], e++)
                {
                    for (int r = start; r < start + rows[e]; r++)
                    {
                        for (int j = 0; j < n; j++) // x·W[e]ᵀ with W[e] [n, k]
                            Assert.Equal(
                                1 + Enumerable.Range(0, k).Sum(p => (double)x[r * k + p] * w[(e * n + j) * k + p]),
                                gotForward[r * n + j],
                                tolerance
                            );
                        for (int p = 0; p < k; p++) // dy·W[e] with W[e] read as [n, k]
                            Assert.Equal(
                                1 + Enumerable.Range(0, n).Sum(j => (double)dy[r * n + j] * w[(e * n + j) * k + p]),
                                gotBackward[r * k + p],
                                tolerance
                            );
                    }
                    for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++) // dyᵀ·x over the group's rows
                        Assert.Equal(
                            1 + Enumerable.Range(start, rows[e]).Sum(r => (double)dy[r * n + j] * x[r * k + p]),
                            gotWeightGrad[(e * n + j) * k + p],
                            tolerance
                        );
                }
            }
            finally
            {
                owned.ForEach(buffer => buffer.Dispose());
            }
        }
    }
}
