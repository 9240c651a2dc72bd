using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Quantization;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// <see cref="IFp8RowKernels"/> on an ILGPU accelerator (CUDA, or ILGPU's CPU accelerator in tests), bitwise the
/// host's (<see cref="Fp8RowKernelBodies"/>). Kernels are compiled on first use and launched on the accelerator's
/// default stream. <see cref="IlgpuMoeKernels"/> hands dispatch one of these.
/// </summary>
/// <param name="accelerator">Where the tensors live.</param>
public sealed class IlgpuFp8RowKernels(Accelerator accelerator) : IFp8RowKernels
{
    private Action<Index1D, ArrayView<float>, int, ArrayView<int>>? _quantize32;
    private Action<Index1D, ArrayView<ushort>, int, ArrayView<int>>? _quantize16;
    private Action<Index1D, ArrayView<int>, int, ArrayView<float>>? _dequantize32;
    private Action<Index1D, ArrayView<int>, int, ArrayView<ushort>>? _dequantize16;

    /// <inheritdoc />
    public void QuantizeRows(Tensor rows, Tensor wire)
    {
        int dim = Fp8WireRows.CheckPair(rows, wire);
        int threads = checked(rows.Rows * Fp8RowQuantizer.ScalesPerRow(dim));
        if (threads == 0)
            return;
        ArrayView<int> words = DeviceViews.Ints(accelerator, wire, nameof(wire));
        if (rows.DType == DType.BFloat16)
        {
            _quantize16 ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, int, ArrayView<int>>(
                Fp8RowKernelBodies.Quantize<ushort, BFloat16DeviceRow>
            );
            _quantize16(threads, DeviceViews.BFloat16Bits(accelerator, rows, nameof(rows)), dim, words);
            return;
        }
        _quantize32 ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<int>>(
            Fp8RowKernelBodies.Quantize<float, Float32DeviceRow>
        );
        _quantize32(threads, DeviceViews.Floats(accelerator, rows, nameof(rows)), dim, words);
    }

    /// <inheritdoc />
    public void DequantizeRows(Tensor wire, Tensor rows)
    {
        int dim = Fp8WireRows.CheckPair(rows, wire);
        int threads = rows.ElementCount;
        if (threads == 0)
            return;
        ArrayView<int> words = DeviceViews.Ints(accelerator, wire, nameof(wire));
        if (rows.DType == DType.BFloat16)
        {
            _dequantize16 ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<ushort>>(
                Fp8RowKernelBodies.Dequantize<ushort, BFloat16DeviceRow>
            );
            _dequantize16(threads, words, dim, DeviceViews.BFloat16Bits(accelerator, rows, nameof(rows)));
            return;
        }
        _dequantize32 ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<float>>(
            Fp8RowKernelBodies.Dequantize<float, Float32DeviceRow>
        );
        _dequantize32(threads, words, dim, DeviceViews.Floats(accelerator, rows, nameof(rows)));
    }
}
