using CsCheck;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// <c>moe train</c>'s device kernels (<see cref="IlgpuTrainerKernels"/>) on ILGPU's CPU accelerator against plain host
/// definitions: the counter batch bitwise; the teacher, the prediction error, dL/dy and the head gradient within a
/// few float32 roundings of float64 references (the kernels sum in float64, in another order, and take tanh from
/// float32 exp).
/// </summary>
[Collection(CpuBackendCollection.Name)]
public sealed class TrainerKernelTests(CpuBackendFixture fixture)
{
    private readonly IlgpuBackend _b = fixture.Backend;

    [Fact]
    public void CounterBatch_IsTheHostStreamBitwise_FromAnyFirstIndex() => CheckCounterBatch(_b);

    [CudaFact]
    public void OnCuda_CounterBatch_IsTheHostStreamBitwise()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        CheckCounterBatch(cuda);
    }

    [Fact]
    public void TeacherAndLoss_MatchFloat64References() => CheckTeacherAndLoss(_b, maxRows: 150, maxD: 40);

    [CudaFact]
    public void OnCuda_TeacherAndLoss_MatchFloat64References()
    {
        // Rows wider than a CUDA group (256 threads) and several head-gradient chunks (64 rows).
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        CheckTeacherAndLoss(cuda, maxRows: 300, maxD: 700);
    }

    private static void CheckCounterBatch(IlgpuBackend backend)
    {
        using var kernels = new IlgpuTrainerKernels(backend.Allocator);
        Gen.Select(Gen.Int[0, 300], Gen.Long[0, 1L << 40], Gen.Int, Gen.Int[0, 1 << 20])
            .Sample(
                (count, first, seed, step) =>
                {
                    ulong key = CounterUniform.StreamKey(seed, step);
                    var expected = new float[count];
                    CounterUniform.Fill(key, first, expected);
                    Tensor x = backend.Allocator.Rent(DType.Float32, count);
                    kernels.CounterBatch(key, first, x);
                    Assert.Equal(expected, x.ToHost().AsSpan<float>().ToArray());
                    backend.Allocator.Return(x);
                },
                iter: 30,
                threads: 1
            );
    }

    [Fact]
    public void CounterUniform_IsUniformOnTheGridAndStreamsDiffer()
    {
        const int n = 1 << 18;
        var values = new float[n];
        CounterUniform.Fill(CounterUniform.StreamKey(0, 1), 0, values);
        double mean = values.Average(v => (double)v),
            variance = values.Average(v => ((double)v - mean) * ((double)v - mean));
        Assert.All(values, v => Assert.True(v >= -1f && v < 1f && v * 8388608f == MathF.Round(v * 8388608f)));
        // Uniform on [-1, 1): mean 0, variance 1/3; the bounds are five standard errors.
        Assert.InRange(mean, -5 * Math.Sqrt(1.0 / 3 / n), 5 * Math.Sqrt(1.0 / 3 / n));
        Assert.InRange(variance, 1.0 / 3 - 5 * Math.Sqrt(4.0 / 45 / n), 1.0 / 3 + 5 * Math.Sqrt(4.0 / 45 / n));
        // Neighbouring seeds and steps give unrelated streams.
        var other = new float[n];
        foreach (ulong key in new[] { CounterUniform.StreamKey(0, 2), CounterUniform.StreamKey(1, 1) })
        {
            CounterUniform.Fill(key, 0, other);
            Assert.True(values.Zip(other).Count(p => p.First == p.Second) < 16);
        }
    }

    private static void CheckTeacherAndLoss(IlgpuBackend backend, int maxRows, int maxD)
    {
        using var kernels = new IlgpuTrainerKernels(backend.Allocator);
        Gen.Select(
                Gen.Int[0, maxRows],
                Gen.Int[1, maxD],
                Gen.Int[0, maxRows],
                Gen.Int[0, maxRows],
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (rows, d, startPick, countPick, seed) =>
                {
                    int ownStart = rows == 0 ? 0 : startPick % (rows + 1),
                        ownCount = countPick % (rows - ownStart + 1);
                    var r = new Random(seed);
                    float[] x = Uniform(r, rows * d, 1),
                        y = Uniform(r, rows * d, 1),
                        a = Uniform(r, d, 1.5 / Math.Sqrt(d)),
                        b = Uniform(r, d, 1.5 / Math.Sqrt(d)),
                        head = Uniform(r, d, 1 / Math.Sqrt(d));
                    const float scale = 2f / 300;
                    var scope = new List<Tensor>();
                    Tensor Up(float[] v, params int[] shape)
                    {
                        Tensor t = backend.Allocator.Upload(Tensor.FromArray(v, shape));
                        scope.Add(t);
                        return t;
                    }
                    Tensor Rent(params int[] shape)
                    {
                        Tensor t = backend.Allocator.Rent(DType.Float32, shape);
                        scope.Add(t);
                        return t;
                    }
                    Tensor dx = Up(x, rows, d),
                        dy = Up(y, rows, d),
                        target = Rent(rows),
                        gradPred = Rent(rows),
                        gradY = Rent(rows, d),
                        results = Rent(ownCount + d);

                    kernels.Teacher(dx, Up(a, d), Up(b, d), target);
                    kernels.Loss(dy, Up(head, 1, d), target, scale, ownStart, ownCount, gradPred, gradY, results);

                    float[] t = target.ToHost().AsSpan<float>().ToArray(),
                        gp = gradPred.ToHost().AsSpan<float>().ToArray(),
                        gy = gradY.ToHost().AsSpan<float>().ToArray(),
                        res = results.ToHost().AsSpan<float>().ToArray();
                    for (int i = 0; i < rows; i++)
                    {
                        double u = Dot(x, i, d, a),
                            v = Dot(x, i, d, b);
                        double teacher = Math.Tanh(u) * v;
                        Assert.True(
                            Math.Abs(t[i] - teacher) <= 1e-6 * (1 + Math.Abs(v)),
                            $"row {i}: teacher {t[i]:R}, reference {teacher:R}"
                        );
                        double error = (float)Dot(y, i, d, head) - t[i];
                        Assert.True(Math.Abs(gp[i] - scale * error) <= 1e-6 * scale * (1 + Math.Abs(error)));
                        for (int j = 0; j < d; j++)
                            Assert.Equal(gp[i] * head[j], gy[i * d + j]);
                        if (i >= ownStart && i < ownStart + ownCount)
                            Assert.Equal(gp[i], scale * res[i - ownStart]);
                    }
                    for (int j = 0; j < d; j++)
                    {
                        double sum = 0,
                            magnitude = 0;
                        for (int i = ownStart; i < ownStart + ownCount; i++)
                        {
                            sum += (double)gp[i] * y[i * d + j];
                            magnitude += Math.Abs((double)gp[i] * y[i * d + j]);
                        }
                        Assert.True(
                            Math.Abs(res[ownCount + j] - sum) <= 1e-6 * magnitude + 1e-30,
                            $"column {j}: head gradient {res[ownCount + j]:R}, reference {sum:R}"
                        );
                    }
                    foreach (Tensor held in scope)
                        backend.Allocator.Return(held);
                },
                iter: 25,
                threads: 1
            );
    }

    [Fact]
    public void Loss_RefusesOwnRowsOutsideTheRows()
    {
        using var kernels = new IlgpuTrainerKernels(_b.Allocator);
        Tensor y = _b.Allocator.Rent(DType.Float32, 4, 3),
            head = _b.Allocator.Rent(DType.Float32, 3),
            target = _b.Allocator.Rent(DType.Float32, 4),
            gradPred = _b.Allocator.Rent(DType.Float32, 4),
            results = _b.Allocator.Rent(DType.Float32, 5);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            kernels.Loss(y, head, target, 1f, 2, 3, gradPred, y, results)
        );
        Assert.Contains("[2, 5)", e.Message);
        foreach (Tensor t in new[] { y, head, target, gradPred, results })
            _b.Allocator.Return(t);
    }

    private static double Dot(float[] m, int row, int d, float[] w)
    {
        double sum = 0;
        for (int j = 0; j < d; j++)
            sum += (double)m[row * d + j] * w[j];
        return sum;
    }

    private static float[] Uniform(Random r, int n, double scale) =>
        Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();
}
