namespace MoeSharp.Cuda;

/// <summary>Names of the native libraries the CUDA backend loads by soname.</summary>
public static class CudaLibraries
{
    /// <summary>The CUDA runtime.</summary>
    public const string CudaRuntime = "libcudart.so.13";

    /// <summary>NCCL.</summary>
    public const string Nccl = "libnccl.so.2";

    /// <summary>cuBLAS, newest first.</summary>
    public static IReadOnlyList<string> Cublas { get; } = ["libcublas.so.13", "libcublas.so.12"];
}
