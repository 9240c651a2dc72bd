using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>Typed ILGPU views of device tensors, with the argument checks the public kernels share.</summary>
internal static class DeviceViews
{
    /// <summary>
    /// The float32 elements of <paramref name="t"/>, which must live on <paramref name="accelerator"/>.
    /// </summary>
    public static ArrayView<float> Floats(Accelerator accelerator, Tensor t, string name) =>
        Typed<float>(accelerator, t, DType.Float32, name);

    /// <summary>The int64 elements of <paramref name="t"/>.</summary>
    public static ArrayView<long> Longs(Accelerator accelerator, Tensor t, string name) =>
        Typed<long>(accelerator, t, DType.Int64, name);

    /// <summary>The int32 elements of <paramref name="t"/>.</summary>
    public static ArrayView<int> Ints(Accelerator accelerator, Tensor t, string name) =>
        Typed<int>(accelerator, t, DType.Int32, name);

    /// <summary>A bfloat16 tensor as its raw 16-bit patterns.</summary>
    public static ArrayView<ushort> BFloat16Bits(Accelerator accelerator, Tensor t, string name) =>
        Typed<ushort>(accelerator, t, DType.BFloat16, name);

    /// <summary>The element count both tensors share; throws naming <paramref name="name"/> when they differ.</summary>
    public static int SameCount(Tensor expected, Tensor actual, string name)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual, name);
        if (expected.ElementCount != actual.ElementCount)
        {
            throw new ArgumentException(
                $"{name} has {actual.ElementCount} elements but the input has {expected.ElementCount}",
                name
            );
        }
        return expected.ElementCount;
    }

    private static ArrayView<T> Typed<T>(Accelerator accelerator, Tensor t, DType dtype, string name)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.DeviceBuffer is not IlgpuDeviceBuffer buffer || buffer.Accelerator != accelerator)
        {
            throw new ArgumentException($"{name} ({t}) lives on {t.Device}, not on this ILGPU accelerator", name);
        }
        if (t.DType != dtype)
            throw new ArgumentException($"{name} must be {dtype}; got {t}", name);
        return buffer.View<T>(t.ElementCount);
    }
}
