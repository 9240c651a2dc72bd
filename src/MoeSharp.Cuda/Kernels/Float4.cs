namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Four floats moved together: a thread of the bandwidth kernels handles a quad, so there are a quarter of the
/// threads and index computations (ILGPU emits 16-byte vector loads for it only at optimization level O2, which
/// this backend does not use).
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
