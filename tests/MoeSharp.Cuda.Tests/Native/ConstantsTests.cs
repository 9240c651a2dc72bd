using MoeSharp.Cuda.Native;
using MoeSharp.Cuda.Nccl;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>
/// Every constant MoeSharp passes to CUDA, NCCL or cuBLAS, against the header line it was copied from (quoted).
/// Headers: nccl.h 2.28.3 (src/nccl.h.in), library_types.h, cublas_api.h, driver_types.h of the CUDA toolkit.
/// </summary>
public class ConstantsTests
{
    [Fact]
    public void Nccl()
    {
        Assert.Equal(128, NcclConstants.UniqueIdBytes); // #define NCCL_UNIQUE_ID_BYTES 128
        Assert.Equal(0, NcclConstants.Success); // ncclSuccess                 =  0,
        Assert.Equal(7, NcclConstants.InProgress); // ncclInProgress              =  7,
        Assert.Equal(0, NcclConstants.Int8); // ncclInt8       = 0,
        Assert.Equal(2, NcclConstants.Int32); // ncclInt32      = 2,
        Assert.Equal(4, NcclConstants.Int64); // ncclInt64      = 4,
        Assert.Equal(7, NcclConstants.Float32); // ncclFloat32    = 7,
        Assert.Equal(9, NcclConstants.BFloat16); // ncclBfloat16   = 9,
        Assert.Equal(0, NcclConstants.Sum); // ncclSum        = 0,
        // typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;
        Assert.Equal(128, System.Runtime.CompilerServices.Unsafe.SizeOf<NcclUniqueId>());
    }

    [Fact]
    public void NcclTypeOfEachDType()
    {
        Assert.Equal(NcclConstants.Float32, NcclDataTypes.For(DType.Float32));
        Assert.Equal(NcclConstants.BFloat16, NcclDataTypes.For(DType.BFloat16));
        Assert.Equal(NcclConstants.Int32, NcclDataTypes.For(DType.Int32));
        Assert.Equal(NcclConstants.Int64, NcclDataTypes.For(DType.Int64));
    }

    [Fact]
    public void CudaRuntime()
    {
        Assert.Equal(0, CudaConstants.Success); // cudaSuccess = 0
        Assert.Equal(100, CudaConstants.ErrorNoDevice); // cudaErrorNoDevice                     =     100,
        Assert.Equal(600, CudaConstants.ErrorNotReady); // cudaErrorNotReady                     =     600,
        Assert.Equal(1, CudaConstants.MemcpyHostToDevice); // cudaMemcpyHostToDevice      =   1,
        Assert.Equal(2, CudaConstants.MemcpyDeviceToHost); // cudaMemcpyDeviceToHost      =   2,
        Assert.Equal(3, CudaConstants.MemcpyDeviceToDevice); // cudaMemcpyDeviceToDevice    =   3,
        Assert.Equal(0x01u, CudaConstants.StreamNonBlocking); // #define cudaStreamNonBlocking 0x01
        Assert.Equal(0x00u, CudaConstants.EventDefault); // #define cudaEventDefault 0x00
        Assert.Equal(0x02u, CudaConstants.EventDisableTiming); // #define cudaEventDisableTiming 0x02
    }

    [Fact]
    public void Cublas()
    {
        Assert.Equal(0, CublasConstants.StatusSuccess); // CUBLAS_STATUS_SUCCESS = 0,
        Assert.Equal(7, CublasConstants.StatusInvalidValue); // CUBLAS_STATUS_INVALID_VALUE = 7,
        Assert.Equal(15, CublasConstants.StatusNotSupported); // CUBLAS_STATUS_NOT_SUPPORTED = 15,
        Assert.Equal(0, CublasConstants.OpN); // CUBLAS_OP_N = 0,
        Assert.Equal(1, CublasConstants.OpT); // CUBLAS_OP_T = 1,
        Assert.Equal(0, CublasConstants.CudaR32F); // CUDA_R_32F  =  0, /* real as a float */
        Assert.Equal(14, CublasConstants.CudaR16BF); // CUDA_R_16BF = 14, /* real as a nv_bfloat16 */
        Assert.Equal(68, CublasConstants.Compute32F); // CUBLAS_COMPUTE_32F = 68,           /* float - default */
        // CUBLAS_COMPUTE_32F_PEDANTIC = 69, /* float - pedantic */
        Assert.Equal(69, CublasConstants.Compute32FPedantic);
        // CUBLAS_COMPUTE_32F_FAST_16BF = 75, /* float - fast, allows down-converting inputs to bfloat16 or TF32 */
        Assert.Equal(75, CublasConstants.Compute32FFast16BF);
        Assert.Equal(-1, CublasConstants.GemmDefault); // CUBLAS_GEMM_DEFAULT = -1,
        Assert.Equal(0, CublasConstants.DefaultMath); // CUBLAS_DEFAULT_MATH = 0,
        Assert.Equal(2, CublasConstants.PedanticMath); // CUBLAS_PEDANTIC_MATH = 2,
    }
}
