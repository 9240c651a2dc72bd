namespace MoeSharp.Tensors;

/// <summary>One validated tensor entry of a safetensors header: where its bytes lie in the data block.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, each non-negative; their product fits a <see cref="Tensor"/>.</param>
/// <param name="Begin">First byte in the data block (relative to the end of the header).</param>
/// <param name="End">One past the last byte; <c>End - Begin</c> equals the element count times the dtype size.</param>
internal sealed record SafetensorsEntry(string Name, DType DType, int[] Shape, long Begin, long End)
{
    /// <summary>Bytes the tensor occupies.</summary>
    public long ByteLength => End - Begin;

    /// <summary>The offsets as the header writes them, for messages.</summary>
    public string OffsetsText => $"[{Begin}, {End}]";
}
