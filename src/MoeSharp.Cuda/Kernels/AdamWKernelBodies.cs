using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The multi-tensor AdamW kernel behind <see cref="IlgpuLayerKernels"/>: up to <see cref="SlotCount"/> parameters
/// in one launch, each cut into chunks of 128 values, a warp per chunk (lane l takes values <c>l + 32m</c>, m =
/// 0..3, so each access of the warp covers 128 contiguous bytes). A thread loads all sixteen inputs of its four
/// values before it computes and stores, so every thread keeps sixteen loads in flight instead of four (the old
/// per-parameter kernel updated one value at a time and moved about 3.3 TB/s on an H200). The arithmetic is
/// <c>HostAdamW</c>'s operation sequence.
/// </summary>
internal static class AdamWKernelBodies
{
    /// <summary>Parameters one launch takes.</summary>
    public const int SlotCount = 8;

    /// <summary>Values a chunk (a warp) updates.</summary>
    public const int ChunkValues = 128;

    /// <summary>Where one parameter's tensors are and which chunks of the launch are its.</summary>
    public struct Slot
    {
        /// <summary>θ, m, v (updated) and g.</summary>
        public ArrayView<float> Value,
            Grad,
            ExpAvg,
            ExpAvgSq;

        /// <summary>The bfloat16 copy (a one-value placeholder when <see cref="HasCopy"/> is 0).</summary>
        public ArrayView<ushort> Copy;

        /// <summary>Where value i's copy goes.</summary>
        public CopyMap Map;

        /// <summary>The parameter's value count.</summary>
        public int Length;

        /// <summary>The launch's index of the parameter's first chunk (int.MaxValue for an unused slot).</summary>
        public int FirstChunk;

        /// <summary>1: write the copy.</summary>
        public int HasCopy;

        /// <summary>1: the copy's blocks are whole chunks, so a chunk's copy is contiguous (one index division per
        /// thread instead of one per value).</summary>
        public int ChunkedCopy;
    }

    /// <summary>The launch's parameters, in chunk order (a kernel takes a fixed set of arguments).</summary>
    public struct Slots
    {
        /// <summary>Parameter 0..7.</summary>
        public Slot S0,
            S1,
            S2,
            S3,
            S4,
            S5,
            S6,
            S7;
    }

    /// <summary>
    /// Thread i: lane <c>i mod 32</c> of chunk <c>i / 32</c> of the launch, in the parameter whose chunks hold it.
    /// A chunk that runs past its parameter's end updates only the values inside.
    /// </summary>
    public static void AdamWChunks(
        Index1D i,
        Slots slots,
        float beta1,
        float beta2,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        int index = i;
        int chunk = index / 32,
            lane = index - (chunk * 32);
        Slot s = slots.S0;
        if (chunk >= slots.S1.FirstChunk)
            s = slots.S1;
        if (chunk >= slots.S2.FirstChunk)
            s = slots.S2;
        if (chunk >= slots.S3.FirstChunk)
            s = slots.S3;
        if (chunk >= slots.S4.FirstChunk)
            s = slots.S4;
        if (chunk >= slots.S5.FirstChunk)
            s = slots.S5;
        if (chunk >= slots.S6.FirstChunk)
            s = slots.S6;
        if (chunk >= slots.S7.FirstChunk)
            s = slots.S7;
        int first = ((chunk - s.FirstChunk) * ChunkValues) + lane;
        if (first + 96 >= s.Length)
        {
            for (int m = 0; m < 4 && first + (m * 32) < s.Length; m++)
                OneValue(s, first + (m * 32), beta1, beta2, stepSize, bias2Sqrt, epsilon, decay);
            return;
        }
        int a1 = first + 32,
            a2 = first + 64,
            a3 = first + 96;
        float g0 = s.Grad[first],
            g1 = s.Grad[a1],
            g2 = s.Grad[a2],
            g3 = s.Grad[a3];
        float m0 = s.ExpAvg[first],
            m1 = s.ExpAvg[a1],
            m2 = s.ExpAvg[a2],
            m3 = s.ExpAvg[a3];
        float v0 = s.ExpAvgSq[first],
            v1 = s.ExpAvgSq[a1],
            v2 = s.ExpAvgSq[a2],
            v3 = s.ExpAvgSq[a3];
        float x0 = s.Value[first],
            x1 = s.Value[a1],
            x2 = s.Value[a2],
            x3 = s.Value[a3];
        m0 = FirstMoment(beta1, m0, g0);
        m1 = FirstMoment(beta1, m1, g1);
        m2 = FirstMoment(beta1, m2, g2);
        m3 = FirstMoment(beta1, m3, g3);
        v0 = SecondMoment(beta2, v0, g0);
        v1 = SecondMoment(beta2, v1, g1);
        v2 = SecondMoment(beta2, v2, g2);
        v3 = SecondMoment(beta2, v3, g3);
        x0 = Updated(x0, m0, v0, stepSize, bias2Sqrt, epsilon, decay);
        x1 = Updated(x1, m1, v1, stepSize, bias2Sqrt, epsilon, decay);
        x2 = Updated(x2, m2, v2, stepSize, bias2Sqrt, epsilon, decay);
        x3 = Updated(x3, m3, v3, stepSize, bias2Sqrt, epsilon, decay);
        s.ExpAvg[first] = m0;
        s.ExpAvg[a1] = m1;
        s.ExpAvg[a2] = m2;
        s.ExpAvg[a3] = m3;
        s.ExpAvgSq[first] = v0;
        s.ExpAvgSq[a1] = v1;
        s.ExpAvgSq[a2] = v2;
        s.ExpAvgSq[a3] = v3;
        s.Value[first] = x0;
        s.Value[a1] = x1;
        s.Value[a2] = x2;
        s.Value[a3] = x3;
        if (s.HasCopy == 0)
            return;
        if (s.ChunkedCopy != 0)
        {
            long c = s.Map.At(first);
            s.Copy[c] = (ushort)BFloat16KernelBodies.Round(x0);
            s.Copy[c + 32] = (ushort)BFloat16KernelBodies.Round(x1);
            s.Copy[c + 64] = (ushort)BFloat16KernelBodies.Round(x2);
            s.Copy[c + 96] = (ushort)BFloat16KernelBodies.Round(x3);
        }
        else
        {
            s.Copy[s.Map.At(first)] = (ushort)BFloat16KernelBodies.Round(x0);
            s.Copy[s.Map.At(a1)] = (ushort)BFloat16KernelBodies.Round(x1);
            s.Copy[s.Map.At(a2)] = (ushort)BFloat16KernelBodies.Round(x2);
            s.Copy[s.Map.At(a3)] = (ushort)BFloat16KernelBodies.Round(x3);
        }
    }

    /// <summary>Where value element i's bfloat16 copy goes: <c>(i / Block)·Stride + Offset + i mod Block</c>
    /// (<c>BFloat16CopyLayout</c> on the device).</summary>
    public readonly struct CopyMap(int block, int stride, int offset)
    {
        private readonly int _block = block,
            _stride = stride,
            _offset = offset;

        /// <summary>The copy's index of value element <paramref name="i"/> (a value tensor has fewer than 2³¹
        /// elements, so 32-bit division: a 64-bit one is emulated on the GPU).</summary>
        public long At(int i)
        {
            int block = i / _block;
            return ((long)block * _stride) + _offset + (i - (block * _block));
        }
    }

    /// <summary>Value <paramref name="at"/> of slot <paramref name="s"/> on its own (a chunk's tail).</summary>
    private static void OneValue(
        Slot s,
        int at,
        float beta1,
        float beta2,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        float g = s.Grad[at];
        float m = FirstMoment(beta1, s.ExpAvg[at], g);
        float v = SecondMoment(beta2, s.ExpAvgSq[at], g);
        s.ExpAvg[at] = m;
        s.ExpAvgSq[at] = v;
        float x = Updated(s.Value[at], m, v, stepSize, bias2Sqrt, epsilon, decay);
        s.Value[at] = x;
        if (s.HasCopy != 0)
            s.Copy[s.Map.At(at)] = (ushort)BFloat16KernelBodies.Round(x);
    }

    /// <summary><c>m = β1·m + (1−β1)·g</c>.</summary>
    private static float FirstMoment(float beta1, float m, float g) => (beta1 * m) + ((1f - beta1) * g);

    /// <summary><c>v = β2·v + (1−β2)·g·g</c>.</summary>
    private static float SecondMoment(float beta2, float v, float g) => (beta2 * v) + ((1f - beta2) * g * g);

    /// <summary><c>θ·decay − stepSize·m / (√v / bias2Sqrt + ε)</c>.</summary>
    private static float Updated(
        float value,
        float m,
        float v,
        float stepSize,
        float bias2Sqrt,
        float epsilon,
        float decay
    )
    {
        float denom = (MathF.Sqrt(v) / bias2Sqrt) + epsilon;
        return (value * decay) - (stepSize * m / denom);
    }
}
