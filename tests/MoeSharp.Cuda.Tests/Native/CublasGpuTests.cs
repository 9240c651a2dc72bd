using System.Runtime.InteropServices;
using MoeSharp.Cuda.Cublas;
using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>cuBLAS grouped GEMMs against a host reference. Run on the GPU machine; skipped elsewhere.</summary>
public class CublasGpuTests
{
    private const int Device = 0;

    private static Tensor Upload<T>(T[] values, DType dtype, int[] shape, List<CudaDeviceBuffer> owned) where T : unmanaged
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
                    for (int p = 0; p < k; p++) sum += (double)a[row * k + p] * w[(e * n + j) * k + p];
                    output[row * n + j] = sum;
                }
        return output;
    }

    private static (float[] A, float[] W) Inputs(int[] rows, int n, int k, int seed, bool roundToBFloat16)
    {
        var random = new Random(seed);
        float Next() => roundToBFloat16 ? (float)(BFloat16)(float)(random.NextDouble() - 0.5) : (float)(random.NextDouble() - 0.5);
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
            const int n = 24, k = 40;
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
                for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 1e-4);
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
        const int n = 16, k = 64;
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
            for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 1e-3);
        }
        finally
        {
            owned.ForEach(b => b.Dispose());
        }
    }
}
