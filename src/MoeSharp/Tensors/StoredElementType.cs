namespace MoeSharp.Tensors;

/// <summary>
/// An element type as stored in a checkpoint file that <see cref="LazySafetensorsFile"/> widens to float32 on read:
/// the float types real checkpoints hold, whether or not a <see cref="Tensor"/> can store them.
/// </summary>
public enum StoredElementType
{
    /// <summary>A dtype MoeSharp does not read (I8, F64, …): listed, never converted.</summary>
    Other,

    /// <summary><c>F32</c>.</summary>
    Float32,

    /// <summary><c>BF16</c>, widened exactly.</summary>
    BFloat16,

    /// <summary><c>F16</c> (IEEE binary16), widened exactly.</summary>
    Float16,

    /// <summary>
    /// <c>F8_E4M3</c> (the OCP "e4m3fn" format: bias 7, no infinities, NaN at S.1111.111), widened exactly.
    /// </summary>
    Float8E4M3,
}

/// <summary>Names, sizes and float32 widening of <see cref="StoredElementType"/> values.</summary>
public static class StoredElementTypes
{
    private static readonly float[] E4M3 = BuildE4M3Table();

    /// <summary>
    /// The type of a safetensors dtype name; <see cref="StoredElementType.Other"/> for one MoeSharp does not widen.
    /// </summary>
    public static StoredElementType Parse(string safetensorsName) =>
        safetensorsName switch
        {
            "F32" => StoredElementType.Float32,
            "BF16" => StoredElementType.BFloat16,
            "F16" => StoredElementType.Float16,
            "F8_E4M3" => StoredElementType.Float8E4M3,
            _ => StoredElementType.Other,
        };

    /// <summary>
    /// Bytes per element of any safetensors dtype name (so offsets of tensors nobody reads can still be checked);
    /// 0 for a name the format does not define.
    /// </summary>
    public static int SizeOf(string safetensorsName) =>
        safetensorsName switch
        {
            "F64" or "I64" or "U64" => 8,
            "F32" or "I32" or "U32" => 4,
            "F16" or "BF16" or "I16" or "U16" => 2,
            "F8_E4M3" or "F8_E5M2" or "I8" or "U8" or "BOOL" => 1,
            _ => 0,
        };

    /// <summary>
    /// Widens stored little-endian elements to float32; <paramref name="destination"/> gets one value per element.
    /// </summary>
    /// <exception cref="NotSupportedException">The type is <see cref="StoredElementType.Other"/>.</exception>
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    public static void ToFloat32(StoredElementType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (type)
        {
            case StoredElementType.Float32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case StoredElementType.BFloat16:
                WidenBFloat16(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(source), destination);
                break;
            case StoredElementType.Float16:
                for (int i = 0; i < destination.Length; i++)
                {
                    ushort bits = (ushort)(source[2 * i] | (source[2 * i + 1] << 8));
                    destination[i] = (float)BitConverter.UInt16BitsToHalf(bits);
                }
                break;
            case StoredElementType.Float8E4M3:
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = E4M3[source[i]];
                break;
            default:
                throw new NotSupportedException($"cannot widen {type} to float32");
        }
    }

    /// <summary>
    /// bfloat16 bits to float32: the bits shifted into the upper half, a vector at a time (little-endian hosts).
    /// </summary>
    // A one-shot load runs these loops once per tensor: compile them optimised at once instead of at tier 0.
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    private static void WidenBFloat16(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        Span<uint> bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(destination);
        int i = 0;
        int width = System.Numerics.Vector<ushort>.Count;
        for (; i + width <= destination.Length; i += width)
        {
            System.Numerics.Vector.Widen(new System.Numerics.Vector<ushort>(source[i..]), out var low, out var high);
            System.Numerics.Vector.ShiftLeft(low, 16).CopyTo(bits[i..]);
            System.Numerics.Vector.ShiftLeft(high, 16).CopyTo(bits[(i + width / 2)..]);
        }
        for (; i < destination.Length; i++)
            bits[i] = (uint)source[i] << 16;
    }

    /// <summary>Bytes per element of a readable type.</summary>
    internal static int SizeOf(this StoredElementType type) =>
        type switch
        {
            StoredElementType.Float32 => 4,
            StoredElementType.BFloat16 or StoredElementType.Float16 => 2,
            StoredElementType.Float8E4M3 => 1,
            _ => throw new NotSupportedException($"{type} has no size MoeSharp reads"),
        };

    // 256 values, built from the format's definition: exponent bias 7, 3 mantissa bits, subnormals at exponent 0,
    // and only S.1111.111 is NaN (the "fn" variant trades the infinities for range up to 448).
    private static float[] BuildE4M3Table()
    {
        var table = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int sign = b >> 7,
                exponent = (b >> 3) & 0xF,
                mantissa = b & 7;
            float magnitude =
                exponent == 0 ? mantissa / 8f * MathF.Pow(2, -6) : (1 + mantissa / 8f) * MathF.Pow(2, exponent - 7);
            if (exponent == 15 && mantissa == 7)
                magnitude = float.NaN;
            table[b] = sign == 1 ? -magnitude : magnitude;
        }
        return table;
    }
}
