using System.Numerics;
using System.Runtime.InteropServices;
using MoeSharp.Tensors;

namespace MoeSharp.Quantization;

/// <summary>
/// Quantises rows to FP8 E4M3 with one float32 scale per row per 128 columns (the layout of DeepEP's FP8 dispatch and
/// DeepGEMM's inputs: codes <c>[R, D]</c>, scales <c>[R, ceil(D/128)]</c>, <c>value ≈ code · scale</c>), and back.
/// </summary>
/// <remarks>
/// <para>
/// <b>Scale rule</b> (<see cref="BlockScale"/>): a block's scale is the smallest power of two <c>s ≥ 2^-126</c> with
/// <c>amax ≤ 448·s</c>, <c>amax</c> the largest magnitude among the block's <b>finite</b> elements; a block with no
/// finite non-zero element has scale 1. Power-of-two ("UE8M0") scales make the scaling exact: <c>x / s</c> and <c>code
/// · s</c> round nowhere, so the one rounding is float32 → E4M3 (to nearest, ties to even) and every backend, and a
/// float64 reference, produce the same bits with or without fused multiply-adds or fast reciprocals. The price is at
/// most one binade of range at the bottom of the block (its largest element lands in (224, 448] rather than on 448);
/// the relative precision of normal codes (3 mantissa bits) is the same. DeepEP's FP8 dispatch uses <c>amax/448</c>
/// with <c>amax</c> clamped below at 1e-4, and this rule only as its <c>round_scale</c>/UE8M0 option (computed there
/// from the float32 product <c>amax · (1/448)</c>, which can differ at exact binade boundaries).
/// </para>
/// <para>
/// <b>Non-finite input</b>: NaN and ±Infinity elements become the NaN code (sign kept) and dequantise to NaN; they are
/// left out of <c>amax</c>, so the rest of their block quantises as if they were absent. (In DeepEP an infinity makes
/// the block's scale infinite and its codes zero, so the whole block dequantises to NaN.) No finite element ever
/// saturates: the scale maps <c>amax</c> to at most 448.
/// </para>
/// <para>
/// The result depends only on the row, never on which rank, layout or position quantises it. Dequantising multiplies
/// exactly; to bfloat16 it rounds once (exact unless the value is a bfloat16 subnormal). A block whose largest element
/// is within 1/16 of <see cref="float.MaxValue"/> can round up to 2^128 and dequantise to ±Infinity, as float32
/// rounding itself would.
/// </para>
/// </remarks>
public static class Fp8RowQuantizer
{
    /// <summary>Columns that share one scale.</summary>
    public const int BlockSize = 128;

    private const int MinScaleExponent = -126;

    /// <summary>Scales per row: <c>ceil(dim / 128)</c> (the last block may be partial).</summary>
    public static int ScalesPerRow(int dim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        return (dim + BlockSize - 1) / BlockSize;
    }

    /// <summary>Bytes of one quantised row on the wire: <c>dim</c> codes, <c>4·ceil(dim/128)</c> scale bytes.</summary>
    public static int WireBytesPerRow(int dim) => dim + sizeof(float) * ScalesPerRow(dim);

    /// <summary>The scale of a block whose largest finite magnitude is <paramref name="amax"/> (see remarks).</summary>
    public static float BlockScale(float amax) =>
        BitConverter.UInt32BitsToSingle(BlockScaleBits(BitConverter.SingleToUInt32Bits(amax)));

    /// <summary>
    /// <see cref="BlockScale"/> on bit patterns, integer operations only (the device kernels call it too).
    /// </summary>
    internal static uint BlockScaleBits(uint amaxBits)
    {
        uint bits = amaxBits & 0x7FFF_FFFFu;
        if (bits == 0 || bits >= 0x7F80_0000u)
            return 0x3F80_0000u;
        int floatExponent = (int)(bits >> 23);
        int exponent = MinScaleExponent;
        if (floatExponent != 0)
        {
            // amax = 1.f · 2^k; amax / 2^(k-8) = 1.f · 256 ≤ 448 exactly when 1.f ≤ 1.75 (fraction ≤ 0x600000).
            int k = floatExponent - 127;
            exponent = Math.Max(MinScaleExponent, (bits & 0x7F_FFFFu) <= 0x60_0000u ? k - 8 : k - 7);
        }
        return (uint)(exponent + 127) << 23;
    }

    /// <summary>
    /// Quantises float32 rows: <paramref name="rows"/> is <c>[R, dim]</c> row-major, <paramref name="codes"/> the same
    /// length, <paramref name="scales"/> <c>[R, ScalesPerRow(dim)]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths are not whole rows of <paramref name="dim"/> columns.</exception>
    public static void Quantize(ReadOnlySpan<float> rows, int dim, Span<Float8E4M3> codes, Span<float> scales)
    {
        int rowCount = CheckShapes(rows.Length, dim, codes.Length, scales.Length);
        int perRow = ScalesPerRow(dim);
        for (int r = 0; r < rowCount; r++)
        {
            for (int b = 0; b < perRow; b++)
            {
                int start = r * dim + b * BlockSize,
                    width = Math.Min(BlockSize, dim - b * BlockSize);
                scales[r * perRow + b] = QuantizeBlock(rows.Slice(start, width), codes.Slice(start, width));
            }
        }
    }

    /// <summary>Quantises bfloat16 rows (widened exactly first); shapes as for the float32 overload.</summary>
    /// <exception cref="ArgumentException">Lengths are not whole rows of <paramref name="dim"/> columns.</exception>
    public static void Quantize(ReadOnlySpan<BFloat16> rows, int dim, Span<Float8E4M3> codes, Span<float> scales)
    {
        int rowCount = CheckShapes(rows.Length, dim, codes.Length, scales.Length);
        int perRow = ScalesPerRow(dim);
        Span<float> wide = stackalloc float[BlockSize];
        for (int r = 0; r < rowCount; r++)
        {
            for (int b = 0; b < perRow; b++)
            {
                int start = r * dim + b * BlockSize,
                    width = Math.Min(BlockSize, dim - b * BlockSize);
                ReadOnlySpan<BFloat16> block = rows.Slice(start, width);
                Compute.BFloat16Rows.Widen(block, wide[..width]);
                scales[r * perRow + b] = QuantizeBlock(wide[..width], codes.Slice(start, width));
            }
        }
    }

    /// <summary>Dequantises to float32: <c>rows[i] = code[i] · scale</c> of its block, exact.</summary>
    /// <exception cref="ArgumentException">Lengths are not whole rows of <paramref name="dim"/> columns.</exception>
    public static void Dequantize(ReadOnlySpan<Float8E4M3> codes, ReadOnlySpan<float> scales, int dim, Span<float> rows)
    {
        int rowCount = CheckShapes(rows.Length, dim, codes.Length, scales.Length);
        int perRow = ScalesPerRow(dim);
        for (int r = 0; r < rowCount; r++)
        {
            for (int b = 0; b < perRow; b++)
            {
                int start = r * dim + b * BlockSize,
                    width = Math.Min(BlockSize, dim - b * BlockSize);
                DequantizeBlock(codes.Slice(start, width), scales[r * perRow + b], rows.Slice(start, width));
            }
        }
    }

    /// <summary>Dequantises to bfloat16: the exact float32 product rounded once to nearest even.</summary>
    /// <exception cref="ArgumentException">Lengths are not whole rows of <paramref name="dim"/> columns.</exception>
    public static void Dequantize(
        ReadOnlySpan<Float8E4M3> codes,
        ReadOnlySpan<float> scales,
        int dim,
        Span<BFloat16> rows
    )
    {
        int rowCount = CheckShapes(rows.Length, dim, codes.Length, scales.Length);
        int perRow = ScalesPerRow(dim);
        Span<float> wide = stackalloc float[BlockSize];
        for (int r = 0; r < rowCount; r++)
        {
            for (int b = 0; b < perRow; b++)
            {
                int start = r * dim + b * BlockSize,
                    width = Math.Min(BlockSize, dim - b * BlockSize);
                DequantizeBlock(codes.Slice(start, width), scales[r * perRow + b], wide[..width]);
                Compute.BFloat16Rows.Narrow(wide[..width], rows.Slice(start, width));
            }
        }
    }

    /// <summary>Quantises a <c>[R, D]</c> float32 or bfloat16 tensor into a new <see cref="Fp8RowBlock"/>.</summary>
    /// <exception cref="ArgumentException">The tensor is not two-dimensional, or not float32 or bfloat16.</exception>
    public static Fp8RowBlock Quantize(Tensor rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Shape.Length != 2 || rows.Shape[1] == 0)
        {
            throw new ArgumentException($"rows must be [R, D] with D > 0, got {rows.ShapeString}", nameof(rows));
        }
        int rowCount = rows.Shape[0],
            dim = rows.Shape[1];
        var block = new Fp8RowBlock(rowCount, dim);
        switch (rows.DType)
        {
            case DType.Float32:
                Quantize(rows.AsSpan<float>(), dim, block.Codes, block.Scales);
                break;
            case DType.BFloat16:
                Quantize(rows.AsSpan<BFloat16>(), dim, block.Codes, block.Scales);
                break;
            default:
                throw new ArgumentException($"rows must be float32 or bfloat16, got {rows.DType}", nameof(rows));
        }
        return block;
    }

    /// <summary>Dequantises into a new <c>[R, D]</c> tensor of <paramref name="dtype"/> (float32, bfloat16).</summary>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is neither float32 nor bfloat16.</exception>
    public static Tensor Dequantize(Fp8RowBlock block, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(block);
        switch (dtype)
        {
            case DType.Float32:
            {
                var values = new float[block.Codes.Length];
                Dequantize(block.Codes, block.Scales, block.Dim, values);
                return Tensor.FromArray(values, block.Rows, block.Dim);
            }
            case DType.BFloat16:
            {
                var values = new BFloat16[block.Codes.Length];
                Dequantize(block.Codes, block.Scales, block.Dim, values);
                return Tensor.FromArray(values, block.Rows, block.Dim);
            }
            default:
                throw new ArgumentException($"dtype must be Float32 or BFloat16, got {dtype}", nameof(dtype));
        }
    }

    /// <summary>Quantises one block of at most 128 values; returns its scale.</summary>
    private static float QuantizeBlock(ReadOnlySpan<float> values, Span<Float8E4M3> codes)
    {
        float scale = BlockScale(FiniteAmax(values));
        float inverse = 1f / scale; // a power of two ≥ 2^-120 and ≤ 2^126: exact
        Span<byte> bytes = MemoryMarshal.AsBytes(codes);
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // Four vectors of codes (one per uint lane) narrow into one vector of bytes.
            int lanes = Vector<uint>.Count,
                width = Vector<byte>.Count;
            var factor = new Vector<float>(inverse);
            for (; j <= values.Length - width; j += width)
            {
                Vector<uint> c0 = Encode(values.Slice(j), factor),
                    c1 = Encode(values.Slice(j + lanes), factor);
                Vector<uint> c2 = Encode(values.Slice(j + 2 * lanes), factor);
                Vector<uint> c3 = Encode(values.Slice(j + 3 * lanes), factor);
                Vector.Narrow(Vector.Narrow(c0, c1), Vector.Narrow(c2, c3)).CopyTo(bytes.Slice(j));
            }
        }
        for (; j < values.Length; j++)
        {
            float scaled = values[j] * inverse;
            bytes[j] = Float8E4M3.Encode(BitConverter.SingleToUInt32Bits(scaled));
        }
        return scale;
    }

    private static Vector<uint> Encode(ReadOnlySpan<float> values, Vector<float> factor) =>
        Fp8Vector.Encode(Vector.AsVectorUInt32(new Vector<float>(values) * factor));

    /// <summary>The largest magnitude among the finite elements (0 when there is none).</summary>
    private static float FiniteAmax(ReadOnlySpan<float> values)
    {
        ReadOnlySpan<uint> bits = MemoryMarshal.Cast<float, uint>(values);
        uint max = 0; // magnitudes of finite floats order like their bit patterns
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int width = Vector<uint>.Count;
            var maxes = Vector<uint>.Zero;
            var magnitudeMask = new Vector<uint>(0x7FFF_FFFFu);
            var infinity = new Vector<uint>(0x7F80_0000u);
            for (; j <= bits.Length - width; j += width)
            {
                Vector<uint> magnitude = new Vector<uint>(bits.Slice(j)) & magnitudeMask;
                Vector<uint> finite = Vector.LessThan(magnitude, infinity);
                maxes = Vector.Max(maxes, magnitude & finite);
            }
            for (int k = 0; k < width; k++)
                max = Math.Max(max, maxes[k]);
        }
        for (; j < bits.Length; j++)
        {
            uint magnitude = bits[j] & 0x7FFF_FFFFu;
            if (magnitude < 0x7F80_0000u)
                max = Math.Max(max, magnitude);
        }
        return BitConverter.UInt32BitsToSingle(max);
    }

    /// <summary>Widens one block's codes and multiplies by its scale (both exact).</summary>
    private static void DequantizeBlock(ReadOnlySpan<Float8E4M3> codes, float scale, Span<float> values)
    {
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(codes);
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int lanes = Vector<uint>.Count,
                width = Vector<byte>.Count;
            var factor = new Vector<float>(scale);
            for (; j <= bytes.Length - width; j += width)
            {
                Vector.Widen(new Vector<byte>(bytes.Slice(j)), out Vector<ushort> low, out Vector<ushort> high);
                Vector.Widen(low, out Vector<uint> c0, out Vector<uint> c1);
                Vector.Widen(high, out Vector<uint> c2, out Vector<uint> c3);
                (Fp8Vector.Decode(c0) * factor).CopyTo(values.Slice(j));
                (Fp8Vector.Decode(c1) * factor).CopyTo(values.Slice(j + lanes));
                (Fp8Vector.Decode(c2) * factor).CopyTo(values.Slice(j + 2 * lanes));
                (Fp8Vector.Decode(c3) * factor).CopyTo(values.Slice(j + 3 * lanes));
            }
        }
        for (; j < codes.Length; j++)
            values[j] = codes[j].ToSingle() * scale;
    }

    private static int CheckShapes(int valueCount, int dim, int codeCount, int scaleCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        if (valueCount % dim != 0)
        {
            throw new ArgumentException($"rows hold {valueCount} values, not a whole number of rows of {dim} columns");
        }
        int rowCount = valueCount / dim;
        if (codeCount != valueCount)
        {
            throw new ArgumentException($"codes hold {codeCount} values, expected {valueCount} ({rowCount} × {dim})");
        }
        long expectedScales = (long)rowCount * ScalesPerRow(dim);
        if (scaleCount != expectedScales)
        {
            throw new ArgumentException(
                $"scales hold {scaleCount} values, expected {expectedScales} ({rowCount} × {ScalesPerRow(dim)})"
            );
        }
        return rowCount;
    }
}
