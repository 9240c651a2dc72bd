namespace MoeSharp.Tensors;

/// <summary>Element type of a <see cref="Tensor"/>'s storage.</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32.</summary>
    Float32,

    /// <summary>bfloat16: the upper 16 bits of a binary32, storage only (compute converts to float32).</summary>
    BFloat16,

    /// <summary>Signed 32-bit integer (expert ids, counts).</summary>
    Int32,

    /// <summary>Signed 64-bit integer (expert ids, counts).</summary>
    Int64,
}

/// <summary>Sizes and safetensors names of <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes one element occupies.</summary>
    public static int SizeOf(this DType dtype) =>
        dtype switch
        {
            DType.Float32 => 4,
            DType.BFloat16 => 2,
            DType.Int32 => 4,
            DType.Int64 => 8,
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
        };

    /// <summary>The dtype's name in a safetensors header (<c>F32</c>, <c>BF16</c>, <c>I32</c>, <c>I64</c>).</summary>
    public static string SafetensorsName(this DType dtype) =>
        dtype switch
        {
            DType.Float32 => "F32",
            DType.BFloat16 => "BF16",
            DType.Int32 => "I32",
            DType.Int64 => "I64",
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
        };

    /// <summary>Parses a safetensors dtype name; returns false for names MoeSharp does not store.</summary>
    public static bool TryParseSafetensorsName(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32":
                dtype = DType.Float32;
                return true;
            case "BF16":
                dtype = DType.BFloat16;
                return true;
            case "I32":
                dtype = DType.Int32;
                return true;
            case "I64":
                dtype = DType.Int64;
                return true;
            default:
                dtype = default;
                return false;
        }
    }

    /// <summary>The CLR element type that matches a dtype.</summary>
    internal static Type ClrType(this DType dtype) =>
        dtype switch
        {
            DType.Float32 => typeof(float),
            DType.BFloat16 => typeof(BFloat16),
            DType.Int32 => typeof(int),
            DType.Int64 => typeof(long),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
        };
}
