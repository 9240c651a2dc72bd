using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Nccl;

/// <summary>The <c>ncclDataType_t</c> that moves a tensor's elements.</summary>
internal static class NcclDataTypes
{
    /// <summary>ncclFloat32, ncclBfloat16, ncclInt32 or ncclInt64 for the matching <see cref="DType"/>.</summary>
    public static int For(DType dtype) =>
        dtype switch
        {
            DType.Float32 => NcclConstants.Float32,
            DType.BFloat16 => NcclConstants.BFloat16,
            DType.Int32 => NcclConstants.Int32,
            DType.Int64 => NcclConstants.Int64,
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no NCCL type for this dtype"),
        };
}
