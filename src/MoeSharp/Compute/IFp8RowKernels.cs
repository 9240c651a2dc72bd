using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// FP8 wire rows (<see cref="Quantization.Fp8WireRows"/>) on a backend: the quantise and dequantise of dispatch's
/// <see cref="Dispatch.RowWireFormat.Fp8E4M3"/>. A backend whose tensors live off the host implements it beside
/// <see cref="IMoeKernels"/>; the host's is <see cref="HostFp8RowKernels"/>. Every implementation gives the bits of
/// <see cref="Quantization.Fp8RowQuantizer"/> (the scale rule makes that possible: the scaling never rounds).
/// </summary>
public interface IFp8RowKernels
{
    /// <summary>Quantises <c>[R, D]</c> float32 or bfloat16 rows into int32 wire rows
    /// <c>[R, Fp8WireRows.WordsPerRow(D)]</c>.</summary>
    void QuantizeRows(Tensor rows, Tensor wire);

    /// <summary>Dequantises int32 wire rows into <c>[R, D]</c> float32 (exact) or bfloat16 (rounded once)
    /// rows.</summary>
    void DequantizeRows(Tensor wire, Tensor rows);
}
