using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The expert MLP's element-wise kernel on an ILGPU accelerator: SwiGLU forward, <c>a = silu(g) ⊙ u</c>, the same
/// operation sequence as <c>HostSwiGlu.Forward</c>.
/// </summary>
/// <remarks>
/// Tolerance: bitwise equal to the host on ILGPU's CPU accelerator (the kernel runs .NET's <c>MathF.Exp</c>).
/// On CUDA <c>exp</c> is ILGPU.Algorithms' <c>XMath.Exp</c>, not .NET's, so results may differ from the host by a
/// few ulp (relative error well under 1e-6); the division is IEEE <c>div.rn.f32</c>.
/// </remarks>
internal sealed class IlgpuExpertKernels
{
    private readonly IlgpuTensorAllocator _allocator;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _swiGlu;

    /// <summary>Compiles the kernels on <paramref name="allocator"/>'s accelerator.</summary>
    public IlgpuExpertKernels(IlgpuTensorAllocator allocator)
    {
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        _swiGlu = allocator.Accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>
        >(ExpertKernelBodies.SwiGluForward);
    }

    /// <summary><c>activation = silu(gate) ⊙ up</c>, element-wise.</summary>
    /// <param name="gate">g: [R, H] float32 device tensor.</param>
    /// <param name="up">u: [R, H] float32.</param>
    /// <param name="activation">Output a: [R, H] float32 (may alias an input).</param>
    /// <exception cref="ArgumentException">Element counts or dtypes differ, or a tensor is not on this
    /// device.</exception>
    public void SwiGluForward(Tensor gate, Tensor up, Tensor activation)
    {
        int n = DeviceViews.SameCount(gate, up, nameof(up));
        DeviceViews.SameCount(gate, activation, nameof(activation));
        if (n == 0)
            return;
        Accelerator acc = _allocator.Accelerator;
        _swiGlu(
            n,
            DeviceViews.Floats(acc, gate, nameof(gate)),
            DeviceViews.Floats(acc, up, nameof(up)),
            DeviceViews.Floats(acc, activation, nameof(activation))
        );
    }
}
