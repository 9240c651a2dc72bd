using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Tensors;
using AdamWWithCopyKernel = System.Action<
    ILGPU.Index1D,
    ILGPU.ArrayView<float>,
    ILGPU.ArrayView<float>,
    ILGPU.ArrayView<float>,
    ILGPU.ArrayView<float>,
    ILGPU.ArrayView<ushort>,
    MoeSharp.Cuda.Kernels.LayerKernelBodies.CopyMap,
    float,
    float,
    float,
    float,
    float,
    float
>;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// AdamW that also writes the updated values' bfloat16 copy (the padded experts' persistent weights) in the same
/// pass: 2 more bytes written per value instead of a later cast that reads 4 and writes 2 per value each forward.
/// </summary>
public sealed partial class IlgpuLayerKernels
{
    private AdamWWithCopyKernel? _adamWWithCopy,
        _adamWWithCopyTiled;

    /// <inheritdoc />
    public bool WritesBFloat16Copies => true;

    /// <inheritdoc />
    public void AdamWStep(
        Tensor value,
        Tensor grad,
        Tensor expAvg,
        Tensor expAvgSq,
        AdamWScalars s,
        BFloat16CopyLayout copy
    )
    {
        int n = DeviceViews.SameCount(value, grad, nameof(grad));
        DeviceViews.SameCount(value, expAvg, nameof(expAvg));
        DeviceViews.SameCount(value, expAvgSq, nameof(expAvgSq));
        copy.CheckFits(n);
        if (n == 0)
            return;
        // Tiled: whole 128-value tiles that never straddle two blocks of the copy layout.
        bool tiled = n % 128 == 0 && copy.Block % 128 == 0;
        var kernel = tiled
            ? _adamWWithCopyTiled ??= Load(LayerKernelBodies.AdamWWithCopyTiled)
            : _adamWWithCopy ??= Load(LayerKernelBodies.AdamWWithCopy);
        kernel(
            tiled ? n / 4 : n,
            Floats(value, nameof(value)),
            Floats(grad, nameof(grad)),
            Floats(expAvg, nameof(expAvg)),
            Floats(expAvgSq, nameof(expAvgSq)),
            DeviceViews.BFloat16Bits(_acc, copy.Target, nameof(copy)),
            new LayerKernelBodies.CopyMap(copy.Block, copy.Stride, copy.Offset),
            s.Beta1,
            s.Beta2,
            s.StepSize,
            s.Bias2Sqrt,
            s.Epsilon,
            s.Decay
        );

        AdamWWithCopyKernel Load(AdamWWithCopyKernel body) => _acc.LoadAutoGroupedStreamKernel(body);
    }
}
