using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Kernel bodies behind <see cref="IlgpuTrainerKernels"/>: <c>moe train</c>'s batch, teacher, loss and head gradient
/// on the device. Every reduction runs in a fixed order (a group's tree, then chunks in order), so a step's results are
/// the same from run to run; dot products sum float32 products in float64, where each product is exact, so a fused
/// multiply-add gives the same sums as a separate multiply and add.
/// </summary>
internal static class TrainerKernelBodies
{
    /// <summary>The largest group the row kernels use; their shared arrays have this length.</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Thread i: <c>x[i] = CounterUniform.At(key, first + i)</c>.</summary>
    public static void CounterBatch(Index1D i, ArrayView<float> x, ulong key, long first) =>
        x[i] = CounterUniform.At(key, first + i);

    /// <summary>
    /// Group r (one per row of <c>x</c> [R, D]): <c>target[r] = tanh(x_r·a) · (x_r·b)</c>, the dots summed in float64.
    /// </summary>
    public static void TeacherRows(
        ArrayView<float> x,
        ArrayView<float> a,
        ArrayView<float> b,
        int d,
        ArrayView<float> target
    )
    {
        ArrayView<double> us = SharedMemory.Allocate<double>(MaxGroupSize);
        ArrayView<double> vs = SharedMemory.Allocate<double>(MaxGroupSize);
        int row = Grid.IdxX,
            t = Group.IdxX,
            n = Group.DimX;
        long start = (long)row * d;
        double u = 0,
            v = 0;
        for (int j = t; j < d; j += n)
        {
            double xj = x[start + j];
            u += xj * a[j];
            v += xj * b[j];
        }
        us[t] = u;
        vs[t] = v;
        Group.Barrier();
        for (int s = n / 2; s > 0; s /= 2)
        {
            if (t < s)
            {
                us[t] += us[t + s];
                vs[t] += vs[t + s];
            }
            Group.Barrier();
        }
        if (t == 0)
            target[row] = Teacher(us[0], vs[0]);
    }

    /// <summary>
    /// <c>tanh(u) · v</c> with tanh from float32 <c>exp</c> (the function every accelerator's kernels have:
    /// <c>MathF.Exp</c>, ILGPU.Algorithms' <c>XMath.Exp</c> on CUDA), within a few 1e-7 of <c>Math.Tanh</c>.
    /// </summary>
    public static float Teacher(double u, double v)
    {
        float magnitude = u < 0 ? (float)-u : (float)u;
        float e = MathF.Exp(-2f * magnitude);
        float tanh = (1f - e) / (1f + e);
        return (float)((u < 0 ? -tanh : tanh) * v);
    }

    /// <summary>
    /// Group r (one per row of <c>y</c> [R, D]): the prediction <c>p = y_r·head</c> (summed in float64, rounded once),
    /// the error <c>e = p − target[r]</c>, <c>gradPred[r] = scale · e</c> and <c>gradY[r, :] = gradPred[r] · head</c>;
    /// rows <c>[ownStart, ownStart + ownCount)</c> also write <c>e</c> to <c>errors[r − ownStart]</c>.
    /// </summary>
    public static void LossRows(
        ArrayView<float> y,
        ArrayView<float> head,
        ArrayView<float> target,
        int d,
        float scale,
        int ownStart,
        int ownCount,
        ArrayView<float> gradPred,
        ArrayView<float> gradY,
        ArrayView<float> errors
    )
    {
        ArrayView<double> ps = SharedMemory.Allocate<double>(MaxGroupSize);
        int row = Grid.IdxX,
            t = Group.IdxX,
            n = Group.DimX;
        long start = (long)row * d;
        double p = 0;
        for (int j = t; j < d; j += n)
            p += (double)y[start + j] * head[j];
        ps[t] = p;
        Group.Barrier();
        for (int s = n / 2; s > 0; s /= 2)
        {
            if (t < s)
                ps[t] += ps[t + s];
            Group.Barrier();
        }
        float error = (float)ps[0] - target[row];
        float g = scale * error;
        for (int j = t; j < d; j += n)
            gradY[start + j] = g * head[j];
        if (t == 0)
        {
            gradPred[row] = g;
            int own = row - ownStart;
            if (own >= 0 && own < ownCount)
                errors[own] = error;
        }
    }

    /// <summary>
    /// Thread i = (chunk c, column j): <c>partials[c, j] = Σ gradPred[r] · y[r, j]</c> over the own rows
    /// <c>r = ownStart + c·chunk …</c> (at most <paramref name="chunk"/> of them), in row order, in float64.
    /// </summary>
    public static void HeadGradPartials(
        Index1D i,
        ArrayView<float> y,
        ArrayView<float> gradPred,
        int d,
        int ownStart,
        int ownCount,
        int chunk,
        ArrayView<double> partials
    )
    {
        int c = i / d,
            column = i % d;
        int first = c * chunk,
            last = Math.Min(first + chunk, ownCount);
        double sum = 0;
        for (int r = first; r < last; r++)
        {
            int row = ownStart + r;
            sum += (double)gradPred[row] * y[(long)row * d + column];
        }
        partials[i] = sum;
    }

    /// <summary>Thread j: <c>output[outputStart + j] = Σ_c partials[c, j]</c>, chunks in order, rounded once.</summary>
    public static void HeadGradSum(
        Index1D j,
        ArrayView<double> partials,
        int d,
        int chunks,
        ArrayView<float> output,
        int outputStart
    )
    {
        double sum = 0;
        for (int c = 0; c < chunks; c++)
            sum += partials[(long)c * d + j];
        output[outputStart + j] = (float)sum;
    }
}
