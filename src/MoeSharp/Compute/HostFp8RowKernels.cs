using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>The host's <see cref="IFp8RowKernels"/> (<see cref="Quantization.Fp8WireRows"/>, parallel over
/// rows).</summary>
public sealed class HostFp8RowKernels : IFp8RowKernels
{
    /// <summary>The one instance (it holds no state).</summary>
    public static HostFp8RowKernels Instance { get; } = new();

    private HostFp8RowKernels() { }

    /// <inheritdoc />
    public void QuantizeRows(Tensor rows, Tensor wire) => Quantization.Fp8WireRows.Quantize(rows, wire);

    /// <inheritdoc />
    public void DequantizeRows(Tensor wire, Tensor rows) => Quantization.Fp8WireRows.Dequantize(wire, rows);
}
