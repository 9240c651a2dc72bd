using System.Runtime.Intrinsics;

namespace MoeSharp.Compute;

/// <summary>
/// One AdamW update on the host, vectorized and spread over <see cref="HostThreads.Current"/> threads. Each element
/// goes through the same IEEE operations in the same order as the scalar formula (multiply, add, square root, divide;
/// never a fused multiply-add), so the result is bitwise the scalar one on any width and any thread count.
/// </summary>
internal static unsafe class HostAdamW
{
    /// <summary>Updates <paramref name="theta"/>, <paramref name="m"/> and <paramref name="v"/> in place from
    /// <paramref name="g"/>.</summary>
    public static void Step(Span<float> theta, ReadOnlySpan<float> g, Span<float> m, Span<float> v, AdamWScalars s)
    {
        int n = theta.Length;
        if (g.Length != n || m.Length != n || v.Length != n)
        {
            throw new ArgumentException(
                $"AdamW: value has {n} elements but grad {g.Length}, exp_avg {m.Length}, exp_avg_sq {v.Length}"
            );
        }
        fixed (float* pt = theta)
        fixed (float* pg = g)
        fixed (float* pm = m)
        fixed (float* pv = v)
        {
            nint t = (nint)pt,
                gr = (nint)pg,
                ma = (nint)pm,
                va = (nint)pv;
            // Four arrays are touched per element: 16 bytes each way.
            HostParallel.For(
                n,
                32,
                (start, end) => Range((float*)t, (float*)gr, (float*)ma, (float*)va, start, end, s)
            );
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    private static void Range(float* theta, float* g, float* m, float* v, int start, int end, AdamWScalars s)
    {
        int j = start;
        if (Vector256.IsHardwareAccelerated)
        {
            var beta1 = Vector256.Create(s.Beta1);
            var oneMinusBeta1 = Vector256.Create(1f - s.Beta1);
            var beta2 = Vector256.Create(s.Beta2);
            var oneMinusBeta2 = Vector256.Create(1f - s.Beta2);
            var bias2Sqrt = Vector256.Create(s.Bias2Sqrt);
            var epsilon = Vector256.Create(s.Epsilon);
            var decay = Vector256.Create(s.Decay);
            var stepSize = Vector256.Create(s.StepSize);
            for (; j + 8 <= end; j += 8)
            {
                Vector256<float> gj = Vector256.Load(g + j);
                Vector256<float> mj = (beta1 * Vector256.Load(m + j)) + (oneMinusBeta1 * gj);
                Vector256<float> vj = (beta2 * Vector256.Load(v + j)) + (oneMinusBeta2 * gj * gj);
                Vector256<float> denom = (Vector256.Sqrt(vj) / bias2Sqrt) + epsilon;
                Vector256<float> tj = (Vector256.Load(theta + j) * decay) - (stepSize * mj / denom);
                mj.Store(m + j);
                vj.Store(v + j);
                tj.Store(theta + j);
            }
        }
        for (; j < end; j++)
        {
            float gj = g[j];
            m[j] = (s.Beta1 * m[j]) + ((1f - s.Beta1) * gj);
            v[j] = (s.Beta2 * v[j]) + ((1f - s.Beta2) * gj * gj);
            float denom = (MathF.Sqrt(v[j]) / s.Bias2Sqrt) + s.Epsilon;
            theta[j] = (theta[j] * s.Decay) - (s.StepSize * m[j] / denom);
        }
    }
}
