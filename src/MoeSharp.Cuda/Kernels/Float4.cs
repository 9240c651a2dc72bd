namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Four floats moved as one 16-byte value: ILGPU turns loads and stores of this struct into vector instructions
/// (<c>ld.global.v4.f32</c>), so the bandwidth kernels touch memory in 16-byte pieces.
/// </summary>
internal struct Float4
{
    public float X, Y, Z, W;

    public Float4(float x, float y, float z, float w)
    {
        X = x;
        Y = y;
        Z = z;
        W = w;
    }
}
