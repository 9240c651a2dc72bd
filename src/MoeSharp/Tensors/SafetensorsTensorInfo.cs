namespace MoeSharp.Tensors;

/// <summary>Where one tensor of a safetensors file lies, read from the header alone (no data is touched).</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DTypeName">The header's dtype name (<c>F32</c>, <c>BF16</c>, <c>F8_E4M3</c>, …), whatever it
/// is.</param>
/// <param name="Shape">Dimensions (64-bit: a tensor on disk may hold more than 2^31 elements).</param>
/// <param name="FileOffset">Absolute file offset of the first byte.</param>
/// <param name="ByteLength">Bytes the tensor occupies.</param>
public sealed record SafetensorsTensorInfo(
    string Name,
    string DTypeName,
    long[] Shape,
    long FileOffset,
    long ByteLength
)
{
    /// <summary>The element type, <see cref="StoredElementType.Other"/> for a dtype MoeSharp does not widen.</summary>
    public StoredElementType ElementType => StoredElementTypes.Parse(DTypeName);

    /// <summary>Product of the dimensions.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as <c>[a, b]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
