using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The host implementation of <see cref="ILayerKernels"/>: <see cref="HostGemm"/> (row-invariant fused
/// multiply-add chains), <see cref="HostSwiGlu"/>, <see cref="HostScoreFunctions"/> and a per-token top-k, on
/// host tensors. Every result is bitwise deterministic.
/// </summary>
public sealed class HostLayerKernels : ILayerKernels
{
    /// <summary>Creates the host layer kernels next to <paramref name="dispatch"/> (new host dispatch kernels when null).</summary>
    /// <exception cref="ArgumentException"><paramref name="dispatch"/> is not a host backend.</exception>
    public HostLayerKernels(IMoeKernels? dispatch = null)
    {
        Dispatch = dispatch ?? new HostMoeKernels();
        if (!Dispatch.Device.IsHost) throw new ArgumentException($"host layer kernels need host dispatch kernels, not {Dispatch.Device.Name}", nameof(dispatch));
    }

    /// <inheritdoc />
    public IMoeKernels Dispatch { get; }

    /// <inheritdoc />
    public Tensor Allocate(DType dtype, params int[] shape) => Tensor.Uninitialized(dtype, shape);

    /// <inheritdoc />
    public Tensor Zeros(DType dtype, params int[] shape) => Tensor.Zeros(dtype, shape);

    /// <inheritdoc />
    public void Release(Tensor? tensor)
    {
        // Host tensors are managed arrays: the GC reclaims them once the layer drops its references.
    }

    /// <inheritdoc />
    public void MatMulTransposeB(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false)
        => HostGemm.MatMulTransposeB(RowBlock(a, aRow, rows, k), Matrix(b, index, n * k), RowBlock(c, cRow, rows, n), rows, n, k, accumulate);

    /// <inheritdoc />
    public void MatMul(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false)
        => HostGemm.MatMul(RowBlock(a, aRow, rows, k), Matrix(b, index, k * n), RowBlock(c, cRow, rows, n), rows, n, k, accumulate);

    /// <inheritdoc />
    public void MatMulTransposeA(Tensor a, int aRow, Tensor b, int bRow, int rows, int m, int n, Tensor c, int index, bool accumulate = false)
        => HostGemm.MatMulTransposeA(RowBlock(a, aRow, rows, m), RowBlock(b, bRow, rows, n), Matrix(c, index, m * n), m, n, rows, accumulate);

    /// <inheritdoc />
    /// <remarks>The experts run side by side (see <see cref="ForEachGroup"/>); each product is the same as alone.</remarks>
    public void GroupedMatMulTransposeB(Tensor a, ReadOnlySpan<long> rowsPerGroup, Tensor b, int n, int k, Tensor c, bool accumulate = false)
        => ForEachGroup(rowsPerGroup, (g, start, rows, threads) => HostGemm.MatMulTransposeB(RowBlock(a, start, rows, k), Matrix(b, g, n * k),
            RowBlock(c, start, rows, n), rows, n, k, accumulate, threads));

    /// <inheritdoc />
    /// <remarks>The experts run side by side (see <see cref="ForEachGroup"/>).</remarks>
    public void GroupedMatMul(Tensor a, ReadOnlySpan<long> rowsPerGroup, Tensor b, int n, int k, Tensor c, bool accumulate = false)
        => ForEachGroup(rowsPerGroup, (g, start, rows, threads) => HostGemm.MatMul(RowBlock(a, start, rows, k), Matrix(b, g, k * n),
            RowBlock(c, start, rows, n), rows, n, k, accumulate, threads));

    /// <inheritdoc />
    /// <remarks>The experts run side by side (see <see cref="ForEachGroup"/>); each writes only its own <c>C[g]</c>.</remarks>
    public void GroupedMatMulTransposeA(Tensor a, Tensor b, ReadOnlySpan<long> rowsPerGroup, int m, int n, Tensor c, bool accumulate = false)
        => ForEachGroup(rowsPerGroup, (g, start, rows, threads) => HostGemm.MatMulTransposeA(RowBlock(a, start, rows, m), RowBlock(b, start, rows, n),
            Matrix(c, g, m * n), m, n, rows, accumulate, threads));

    /// <summary>
    /// Runs <paramref name="body"/>(group, first row, rows, threads) for every group with rows: one fork over all the
    /// experts instead of one per expert, so small experts (a few hundred rows) keep every thread busy. With G groups on
    /// N threads each product gets about N / G threads. Every group writes its own rows (or its own matrix) and each
    /// product computes each element the same way on any number of threads, so the result is the sequential one.
    /// </summary>
    private static void ForEachGroup(ReadOnlySpan<long> rowsPerGroup, Action<int, int, int, int> body)
    {
        var groups = new List<(int Group, int Start, int Rows)>(rowsPerGroup.Length);
        int start = 0;
        for (int g = 0; g < rowsPerGroup.Length; g++)
        {
            int rows = (int)rowsPerGroup[g];
            if (rows > 0) groups.Add((g, start, rows));
            start += rows;
        }
        int threads = HostThreads.Current;
        if (groups.Count <= 1 || threads == 1)
        {
            foreach (var (g, s, rows) in groups) body(g, s, rows, threads);
            return;
        }
        int perGroup = Math.Max(1, threads / groups.Count);
        Parallel.For(0, groups.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            var (g, s, rows) = groups[i];
            body(g, s, rows, perGroup);
        });
    }

    /// <inheritdoc />
    public void SwiGluForward(Tensor gate, Tensor up, Tensor activation)
        => HostSwiGlu.Forward(gate.AsSpan<float>(), up.AsSpan<float>(), activation.AsSpan<float>());

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp)
        => HostSwiGlu.Backward(gradActivation.AsSpan<float>(), gate.AsSpan<float>(), up.AsSpan<float>(), gradGate.AsSpan<float>(), gradUp.AsSpan<float>());

    /// <inheritdoc />
    public void Score(ScoreFunction function, Tensor logits, Tensor scores)
    {
        if (function == ScoreFunction.Softmax) HostScoreFunctions.Softmax(logits.AsSpan<float>(), scores.AsSpan<float>(), logits.RowLength);
        else HostScoreFunctions.Sigmoid(logits.AsSpan<float>(), scores.AsSpan<float>());
    }

    /// <inheritdoc />
    public void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits)
    {
        if (function == ScoreFunction.Softmax)
        {
            HostScoreFunctions.SoftmaxBackward(scores.AsSpan<float>(), gradScores.AsSpan<float>(), gradLogits.AsSpan<float>(), scores.RowLength);
        }
        else
        {
            HostScoreFunctions.SigmoidBackward(scores.AsSpan<float>(), gradScores.AsSpan<float>(), gradLogits.AsSpan<float>());
        }
    }

    /// <inheritdoc />
    public void TopK(Tensor scores, Tensor? expertBias, int numExpertGroups, int numLimitedGroups, bool routeNorm, float normEpsilon,
        float routeScale, Tensor topScores, Tensor expertIds, bool zeroDiscardedGroups = false)
    {
        int tokens = scores.Rows, e = scores.RowLength, k = topScores.RowLength;
        ReadOnlySpan<float> s = scores.AsSpan<float>();
        ReadOnlySpan<float> bias = expertBias is null ? default : expertBias.AsSpan<float>();
        var biased = new float[e];
        var eligible = new bool[e];
        var groupScores = new float[numExpertGroups];
        var chosen = new int[k];
        for (int t = 0; t < tokens; t++)
        {
            ReadOnlySpan<float> row = s.Slice(t * e, e);
            if (bias.IsEmpty) row.CopyTo(biased);
            else for (int i = 0; i < e; i++) biased[i] = row[i] + bias[i];
            TopKExpertChoice.Choose(biased, numExpertGroups, numLimitedGroups, eligible, groupScores, chosen, zeroDiscardedGroups);

            Span<float> ts = topScores.Row<float>(t);
            Span<long> ids = expertIds.Row<long>(t);
            float sum = 0f;
            for (int j = 0; j < k; j++)
            {
                ids[j] = chosen[j];
                ts[j] = row[chosen[j]];
                sum += ts[j];
            }
            float denominator = routeNorm ? sum + normEpsilon : 1f;
            for (int j = 0; j < k; j++) ts[j] = ts[j] / denominator * routeScale;
        }
    }

    /// <inheritdoc />
    public void TopScoresBackward(Tensor scores, Tensor expertIds, Tensor gradTopScores, bool routeNorm, float normEpsilon, float routeScale,
        Tensor gradScores)
    {
        int tokens = scores.Rows, e = scores.RowLength, k = expertIds.RowLength;
        ReadOnlySpan<float> all = scores.AsSpan<float>();
        Span<float> gz = gradScores.AsSpan<float>();
        gz.Clear();
        for (int t = 0; t < tokens; t++)
        {
            ReadOnlySpan<long> ids = expertIds.Row<long>(t);
            ReadOnlySpan<float> g = gradTopScores.Row<float>(t);
            ReadOnlySpan<float> row = all.Slice(t * e, e);
            Span<float> gs = gz.Slice(t * e, e);
            if (routeNorm)
            {
                // top_j = scale · p_j / S with S = Σ p + ε, so dL/dp_j = scale · (g_j − Σ_i g_i p_i / S) / S.
                float sum = 0f, weighted = 0f;
                for (int j = 0; j < k; j++) sum += row[(int)ids[j]];
                float denominator = sum + normEpsilon;
                for (int j = 0; j < k; j++) weighted += g[j] * row[(int)ids[j]];
                float mean = weighted / denominator;
                for (int j = 0; j < k; j++) gs[(int)ids[j]] = routeScale * (g[j] - mean) / denominator;
            }
            else
            {
                for (int j = 0; j < k; j++) gs[(int)ids[j]] = routeScale * g[j];
            }
        }
    }

    /// <inheritdoc />
    public long[] CountPerExpert(Tensor expertIds, int numExperts)
    {
        var counts = new long[numExperts];
        foreach (long id in expertIds.AsSpan<long>()) counts[id]++;
        return counts;
    }

    /// <inheritdoc />
    public void AddRows(Tensor into, int intoRow, Tensor rows)
    {
        Span<float> a = into.AsSpan<float>().Slice(intoRow * into.RowLength, rows.ElementCount);
        ReadOnlySpan<float> b = rows.AsSpan<float>();
        for (int i = 0; i < a.Length; i++) a[i] += b[i];
    }

    /// <inheritdoc />
    public void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars s)
        => HostAdamW.Step(value.AsSpan<float>(), grad.AsSpan<float>(), expAvg.AsSpan<float>(), expAvgSq.AsSpan<float>(), s);

    private static Span<float> RowBlock(Tensor t, int row, int rows, int width) => t.AsSpan<float>().Slice(row * width, rows * width);

    private static Span<float> Matrix(Tensor t, int index, int elements) => t.AsSpan<float>().Slice(index * elements, elements);
}
