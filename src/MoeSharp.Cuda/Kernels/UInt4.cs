namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Sixteen raw bytes moved together: eight bfloat16 values, two per word (element 2i in the low half of word i,
/// little-endian). The bfloat16 bandwidth kernels handle one per thread, as the float32 ones handle a
/// <see cref="Float4"/>.
/// </summary>
internal struct UInt4
{
    public uint A, B, C, D;

    public UInt4(uint a, uint b, uint c, uint d)
    {
        A = a;
        B = b;
        C = c;
        D = d;
    }
}
