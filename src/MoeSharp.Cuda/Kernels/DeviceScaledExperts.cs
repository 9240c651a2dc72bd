using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The golden files' stand-in experts (expert e maps a row to <c>row · (1 + e/8)</c> in float32) as one kernel over
/// routed rows whose counts per expert are on the device, so a dispatch → experts → combine step needs no host sizes
/// (capacity mode, CUDA graphs). Rows after the counts' sum get zeros. Bitwise the host's
/// <c>ScaledIdentityExperts</c>: one float32 multiply per element.
/// </summary>
internal sealed class DeviceScaledExperts
{
    private readonly IlgpuTensorAllocator _allocator;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int, ArrayView<float>> _apply;

    /// <summary>Compiles the kernel for <paramref name="allocator"/>'s accelerator.</summary>
    public DeviceScaledExperts(IlgpuTensorAllocator allocator)
    {
        _allocator = allocator;
        _apply = allocator.Accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<int>,
            int,
            int,
            int,
            ArrayView<float>
        >(Scale);
    }

    /// <summary>The experts' output for float32 <paramref name="routed"/> rows, rented from the allocator.</summary>
    /// <param name="routed"><c>[R, D]</c> float32 on the device.</param>
    /// <param name="tokensPerLocalExpert"><c>[e]</c> int32 on the device.</param>
    /// <param name="firstExpert">Global id of local expert 0.</param>
    public Tensor Apply(Tensor routed, Tensor tokensPerLocalExpert, int firstExpert)
    {
        if (routed.DType != DType.Float32 || tokensPerLocalExpert.DType != DType.Int32)
            throw new ArgumentException($"float32 rows and int32 counts; got {routed} and {tokensPerLocalExpert}");
        Tensor output = _allocator.Rent(DType.Float32, routed.ShapeArray());
        if (routed.ElementCount > 0)
        {
            _apply(
                routed.ElementCount,
                View<float>(routed),
                View<int>(tokensPerLocalExpert),
                tokensPerLocalExpert.ElementCount,
                routed.RowLength,
                firstExpert,
                View<float>(output)
            );
        }
        return output;
    }

    /// <summary>Thread i: element i of the output, its row's expert found from the counts.</summary>
    private static void Scale(
        Index1D i,
        ArrayView<float> rows,
        ArrayView<int> tokensPerExpert,
        int experts,
        int dim,
        int firstExpert,
        ArrayView<float> output
    )
    {
        int row = i / dim,
            end = 0;
        for (int j = 0; j < experts; j++)
        {
            end += tokensPerExpert[j];
            if (row < end)
            {
                output[i] = rows[i] * (1f + (firstExpert + j) / 8f);
                return;
            }
        }
        output[i] = 0f;
    }

    private static ArrayView<T> View<T>(Tensor tensor)
        where T : unmanaged =>
        tensor.DeviceBuffer is IlgpuDeviceBuffer buffer
            ? buffer.View<T>(tensor.ElementCount)
            : throw new ArgumentException($"{tensor} is not on an ILGPU device", nameof(tensor));
}
