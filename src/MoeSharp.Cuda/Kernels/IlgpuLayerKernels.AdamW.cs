using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Tensors;
using AdamWChunksKernel = System.Action<
    ILGPU.Index1D,
    MoeSharp.Cuda.Kernels.AdamWKernelBodies.Slots,
    float,
    float,
    float,
    float,
    float,
    float
>;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// AdamW as one multi-tensor kernel (<see cref="AdamWKernelBodies"/>): every parameter of a step in one launch (up to
/// eight a launch), each value's bfloat16 copy (the padded experts' persistent weights) written in the same pass
/// where asked: 2 more bytes written per value instead of a later cast that reads 4 and writes 2 per value each
/// forward.
/// </summary>
public sealed partial class IlgpuLayerKernels
{
    private AdamWChunksKernel? _adamWChunks;
    private MemoryBuffer1D<ushort, Stride1D.Dense>? _noCopy;

    /// <inheritdoc />
    public bool WritesBFloat16Copies => true;

    /// <inheritdoc />
    public void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars s) =>
        AdamWSteps([new AdamWTensors(value, grad, expAvg, expAvgSq)], s);

    /// <inheritdoc />
    public void AdamWStep(
        Tensor value,
        Tensor grad,
        Tensor expAvg,
        Tensor expAvgSq,
        AdamWScalars s,
        BFloat16CopyLayout copy
    ) => AdamWSteps([new AdamWTensors(value, grad, expAvg, expAvgSq, copy)], s);

    /// <inheritdoc />
    /// <remarks>One launch per eight parameters (and per 2³¹ threads): a warp per 128 values.</remarks>
    public void AdamWSteps(IReadOnlyList<AdamWTensors> parameters, AdamWScalars s)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var slots = new AdamWKernelBodies.Slot[AdamWKernelBodies.SlotCount];
        int used = 0,
            chunks = 0;
        foreach (AdamWTensors p in parameters)
        {
            int n = DeviceViews.SameCount(p.Value, p.Grad, nameof(p.Grad));
            DeviceViews.SameCount(p.Value, p.ExpAvg, nameof(p.ExpAvg));
            DeviceViews.SameCount(p.Value, p.ExpAvgSq, nameof(p.ExpAvgSq));
            p.Copy?.CheckFits(n);
            if (n == 0)
                continue;
            int own = (n + AdamWKernelBodies.ChunkValues - 1) / AdamWKernelBodies.ChunkValues;
            if (used == slots.Length || (long)(chunks + own) * 32 > int.MaxValue)
            {
                LaunchAdamW(slots, used, chunks, s);
                used = 0;
                chunks = 0;
            }
            slots[used++] = Slot(p, n, chunks);
            chunks += own;
        }
        if (used > 0)
            LaunchAdamW(slots, used, chunks, s);
    }

    private AdamWKernelBodies.Slot Slot(AdamWTensors p, int n, int firstChunk)
    {
        BFloat16CopyLayout? copy = p.Copy;
        return new AdamWKernelBodies.Slot
        {
            Value = Floats(p.Value, nameof(p.Value)),
            Grad = Floats(p.Grad, nameof(p.Grad)),
            ExpAvg = Floats(p.ExpAvg, nameof(p.ExpAvg)),
            ExpAvgSq = Floats(p.ExpAvgSq, nameof(p.ExpAvgSq)),
            Copy = copy is { } c
                ? DeviceViews.BFloat16Bits(_acc, c.Target, nameof(p.Copy))
                : (_noCopy ??= _acc.Allocate1D<ushort>(1)).View,
            Map = copy is { } m ? new AdamWKernelBodies.CopyMap(m.Block, m.Stride, m.Offset) : default,
            Length = n,
            FirstChunk = firstChunk,
            HasCopy = copy is null ? 0 : 1,
            ChunkedCopy = copy is { } b && b.Block % AdamWKernelBodies.ChunkValues == 0 ? 1 : 0,
        };
    }

    /// <summary>Runs the kernel over the first <paramref name="used"/> slots; the others repeat slot 0's views
    /// and start past every chunk, so no thread picks them.</summary>
    private void LaunchAdamW(AdamWKernelBodies.Slot[] slots, int used, int chunks, AdamWScalars s)
    {
        for (int j = used; j < slots.Length; j++)
            slots[j] = slots[0] with { FirstChunk = int.MaxValue };
        _adamWChunks ??= _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            AdamWKernelBodies.Slots,
            float,
            float,
            float,
            float,
            float,
            float
        >(AdamWKernelBodies.AdamWChunks);
        _adamWChunks(
            chunks * 32,
            new AdamWKernelBodies.Slots
            {
                S0 = slots[0],
                S1 = slots[1],
                S2 = slots[2],
                S3 = slots[3],
                S4 = slots[4],
                S5 = slots[5],
                S6 = slots[6],
                S7 = slots[7],
            },
            s.Beta1,
            s.Beta2,
            s.StepSize,
            s.Bias2Sqrt,
            s.Epsilon,
            s.Decay
        );
    }
}
