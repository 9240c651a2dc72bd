using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Sixteen-byte loads and stores of the bandwidth kernels. Kernels are generic over the implementation, as over
/// <see cref="IStrictFloat"/>: CUDA gets <see cref="PtxWideAccess"/>, every other accelerator <see cref="ViewWideAccess"/>.
/// </summary>
/// <remarks>
/// Why: at the optimization level this backend uses (O1; O2's code failed on an H100), ILGPU 1.5.3 splits an access to a
/// 16-byte struct into four 4-byte instructions, so a warp issues four times the memory instructions a vector access
/// needs. The PTX forms address the element from the view's base address, which the host passes as a kernel argument
/// (ILGPU offers no device-side address of a view).
/// </remarks>
internal interface IWideAccess
{
    /// <summary>Element <paramref name="index"/> of <paramref name="view"/>, whose first element is at device address <paramref name="baseAddress"/>.</summary>
    UInt4 Load(ArrayView<UInt4> view, ulong baseAddress, long index);

    /// <summary>Writes element <paramref name="index"/> of <paramref name="view"/>.</summary>
    void Store(ArrayView<UInt4> view, ulong baseAddress, long index, UInt4 value);
}

/// <summary>CUDA: one <c>ld.global.v4.u32</c> / <c>st.global.v4.u32</c> per element (16-byte aligned: buffers are 256-byte aligned).</summary>
internal readonly struct PtxWideAccess : IWideAccess
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public UInt4 Load(ArrayView<UInt4> view, ulong baseAddress, long index)
    {
        Input<ulong> address = baseAddress + (ulong)index * 16UL;
        Output<uint> a = default, b = default, c = default, d = default;
        CudaAsm.EmitRef("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];", ref a, ref b, ref c, ref d, ref address);
        return new UInt4(a.Value, b.Value, c.Value, d.Value);
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(ArrayView<UInt4> view, ulong baseAddress, long index, UInt4 value)
    {
        ulong address = baseAddress + (ulong)index * 16UL;
        CudaAsm.Emit("st.global.v4.u32 [%0], {%1, %2, %3, %4};", address, value.A, value.B, value.C, value.D);
    }
}

/// <summary>Any accelerator: plain view indexing (ILGPU's CPU accelerator copies the struct whole).</summary>
internal readonly struct ViewWideAccess : IWideAccess
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public UInt4 Load(ArrayView<UInt4> view, ulong baseAddress, long index) => view[index];

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(ArrayView<UInt4> view, ulong baseAddress, long index, UInt4 value) => view[index] = value;
}
