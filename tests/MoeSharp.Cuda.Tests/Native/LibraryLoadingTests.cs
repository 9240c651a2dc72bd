using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>A missing library is reported by soname with what provides it; a present one loads.</summary>
public class LibraryLoadingTests
{
    [Fact]
    public void MissingLibrary_MessageNamesEverySonameAndTheProvider()
    {
        var ex = Assert.Throws<DllNotFoundException>(() =>
            NativeLibraryLoader.Load(
                ["libmoesharp-absent.so.9", "libmoesharp-absent.so.8"],
                "the absent package",
                out _
            )
        );
        Assert.Contains("libmoesharp-absent.so.9 / libmoesharp-absent.so.8 not found", ex.Message);
        Assert.Contains("install the absent package", ex.Message);
        Assert.Contains("LD_LIBRARY_PATH", ex.Message);
    }

    public static TheoryData<string> Libraries => new() { "cudart", "nccl", "cublas" };

    [Theory]
    [MemberData(nameof(Libraries))]
    public void RealLibrary_LoadsOrNamesItsSoname(string library)
    {
        (Func<object> load, IReadOnlyList<string> sonames, string provider) = library switch
        {
            "cudart" => ((Func<object>)(() => CudaRuntime.Shared), CudaRuntime.Sonames, CudaRuntime.Provider),
            "nccl" => (() => NcclLibrary.Shared, NcclLibrary.Sonames, NcclLibrary.Provider),
            _ => (() => CublasLibrary.Shared, CublasLibrary.Sonames, CublasLibrary.Provider),
        };
        try
        {
            Assert.NotNull(load());
        }
        catch (DllNotFoundException ex)
        {
            // This is the path on a machine without CUDA (CI, the development box).
            Assert.Equal(NativeLibraryLoader.MissingMessage(sonames, provider), ex.Message);
            Assert.All(sonames, name => Assert.Contains(name, ex.Message));
        }
    }

    [Fact]
    public void Sonames_AreTheVersionsMoeSharpTargets()
    {
        Assert.Equal(["libcudart.so.13", "libcudart.so.12"], CudaRuntime.Sonames);
        Assert.Equal(["libnccl.so.2"], NcclLibrary.Sonames);
        Assert.Equal(["libcublas.so.13", "libcublas.so.12"], CublasLibrary.Sonames);
        Assert.Contains("nvidia-nccl", NcclLibrary.Provider);
    }

    [Fact]
    public void Exceptions_NameTheCallTheCodeAndTheLibraryText()
    {
        var cuda = new CudaException("cudaMalloc", 2, "cudaErrorMemoryAllocation", "out of memory");
        Assert.Equal("cudaMalloc failed with CUDA error 2 (cudaErrorMemoryAllocation): out of memory", cuda.Message);
        var nccl = new NcclException("ncclGroupEnd", 6, "remote process exited or there was a network error", 3);
        Assert.Equal(
            "rank 3: ncclGroupEnd failed with NCCL error 6: remote process exited or there was a network error",
            nccl.Message
        );
        Assert.IsAssignableFrom<MoeSharp.Collectives.CollectiveException>(nccl);
        var cublas = new CublasException("cublasGemmEx", 7, "an invalid value was used as an argument");
        Assert.Equal(
            "cublasGemmEx failed with cuBLAS status 7: an invalid value was used as an argument",
            cublas.Message
        );
    }
}
