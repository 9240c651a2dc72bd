namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Sixteen raw bytes moved together: four 32-bit words of a row (four float32, or eight bfloat16 values with element
/// 2i in the low half of word i, little-endian). The packed row kernels handle one per thread
/// (<see cref="PackedRowKernelBodies"/>).
/// </summary>
internal struct UInt4
{
    public uint A,
        B,
        C,
        D;

    public UInt4(uint a, uint b, uint c, uint d)
    {
        A = a;
        B = b;
        C = c;
        D = d;
    }
}
