using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoeSharp.Compute;

/// <summary>
/// e^x on eight float32 lanes at once, bitwise what <see cref="MathF.Exp"/> returns, so the SwiGLU and score kernels
/// keep their results while leaving the one-call-per-element exponential behind. <see cref="MathF.Exp"/> is the C
/// library's <c>expf</c>; glibc's (since 2.28, from Arm's optimized-routines) reduces <c>x·32/ln 2 = k + r</c>, takes
/// <c>2^(k/32)</c> from a 32-entry table and <c>2^(r/32)</c> from a cubic, all in float64, and rounds to float32 once.
/// This class runs those operations in the same order on float64 vectors, with the fused multiply-adds of glibc's FMA
/// variant (which glibc picks on CPUs with FMA) or separate roundings (its SSE2 variant) otherwise.
/// </summary>
/// <remarks>
/// Lanes with <c>|x| ≥ 88</c> or NaN (glibc's special-case branch: overflow, underflow, infinities) take
/// <see cref="MathF.Exp"/> itself. <see cref="IsAvailable"/> is false (callers then call <see cref="MathF.Exp"/> per
/// element) without AVX2, or when this process's <see cref="MathF.Exp"/> disagrees with the vectors on the probe
/// arguments (another C library): among them the two arguments where glibc's FMA and SSE2 variants differ. Checked
/// against <see cref="MathF.Exp"/> on every float32 below 88 in magnitude with glibc 2.36 (AVX-512 host, FMA variant).
/// </remarks>
internal static unsafe class VectorExpF
{
    /// <summary>glibc's <c>__exp2f_data.tab</c>: the bits of <c>2^(i/32)</c> minus <c>i &lt;&lt; 47</c>.</summary>
    private static readonly ulong* ExpTable = Table([
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ]);

    private static readonly double InvLn2N = BitConverter.Int64BitsToDouble(0x3FF71547652B82FE) * 32; // 32/ln 2
    private static readonly double Shift = BitConverter.Int64BitsToDouble(0x4338000000000000); // 1.5·2^52

    // The cubic's coefficients (glibc's poly_scaled).
    private static readonly double C0 = BitConverter.Int64BitsToDouble(0x3FAC6AF84B912394) / 32 / 32 / 32;
    private static readonly double C1 = BitConverter.Int64BitsToDouble(0x3FCEBFCE50FAC4F3) / 32 / 32;
    private static readonly double C2 = BitConverter.Int64BitsToDouble(0x3FE62E42FF0C52D6) / 32;

    /// <summary>Bits of float32 88: from this magnitude on glibc takes its special-case branch.</summary>
    private const int SpecialMagnitude = 0x42B00000;

    /// <summary>True when <see cref="Exp"/> may be used: AVX2, and <see cref="MathF.Exp"/> agrees on the
    /// probes.</summary>
    public static bool IsAvailable { get; } = Avx2.IsSupported && AgreesWithMathF();

    /// <summary>e^x per lane, bitwise <see cref="MathF.Exp"/>. Only when <see cref="IsAvailable"/>.</summary>
    /// <param name="x">Eight arguments.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        Vector256<float> y = Vector256.Create(
            Avx.ConvertToVector128Single(Reduced(Avx.ConvertToVector256Double(x.GetLower()))),
            Avx.ConvertToVector128Single(Reduced(Avx.ConvertToVector256Double(x.GetUpper())))
        );
        Vector256<int> magnitude = x.AsInt32() & Vector256.Create(int.MaxValue);
        if (Vector256.GreaterThanOrEqualAny(magnitude, Vector256.Create(SpecialMagnitude)))
            y = Special(x, y);
        return y;
    }

    /// <summary>glibc's expf between its special cases, on four float64 lanes; the result before the float32
    /// rounding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Reduced(Vector256<double> x)
    {
        var invLn2N = Vector256.Create(InvLn2N);
        var shift = Vector256.Create(Shift);
        // x·32/ln 2 = k + r with k an integer, r in [-1/2, 1/2]: k from the shift's rounding, its bits the table index.
        Vector256<double> z = invLn2N * x;
        Vector256<double> kd = Fma.IsSupported ? Fma.MultiplyAdd(invLn2N, x, shift) : z + shift;
        Vector256<ulong> ki = kd.AsUInt64();
        kd -= shift;
        Vector256<double> r = Fma.IsSupported ? Fma.MultiplySubtract(invLn2N, x, kd) : z - kd;
        // 2^(k/32): the table's entry for k mod 32 with k/32 added to the exponent.
        Vector256<ulong> t = Avx2.GatherVector256((long*)ExpTable, (ki & Vector256.Create(31UL)).AsInt64(), 8)
            .AsUInt64();
        Vector256<double> s = (t + (ki << 47)).AsDouble();
        // 2^(r/32) ≈ c0·r³ + c1·r² + c2·r + 1, as (c0·r + c1)·r² + (c2·r + 1).
        Vector256<double> c = MultiplyAdd(Vector256.Create(C0), r, Vector256.Create(C1));
        Vector256<double> r2 = r * r;
        Vector256<double> y = MultiplyAdd(Vector256.Create(C2), r, Vector256<double>.One);
        y = MultiplyAdd(c, r2, y);
        return y * s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> MultiplyAdd(Vector256<double> a, Vector256<double> b, Vector256<double> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : (a * b) + c;

    /// <summary>The lanes of glibc's special-case branch (and any NaN) from <see cref="MathF.Exp"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector256<float> Special(Vector256<float> x, Vector256<float> y)
    {
        float* lanes = stackalloc float[Vector256<float>.Count];
        y.Store(lanes);
        for (int i = 0; i < Vector256<float>.Count; i++)
        {
            float xi = x.GetElement(i);
            if ((BitConverter.SingleToInt32Bits(xi) & int.MaxValue) >= SpecialMagnitude)
                lanes[i] = MathF.Exp(xi);
        }
        return Vector256.Load(lanes);
    }

    private static ulong* Table(ulong[] values)
    {
        // Never freed: 256 bytes for the process's lifetime, at a fixed address for the gathers.
        var table = (ulong*)NativeMemory.AlignedAlloc((nuint)(values.Length * sizeof(ulong)), 64);
        values.CopyTo(new Span<ulong>(table, values.Length));
        return table;
    }

    private static bool AgreesWithMathF()
    {
        // Where glibc's FMA and SSE2 variants differ, both ends of the table's range, ±0, and a spread of magnitudes.
        uint[] probes =
        [
            0x4202422F,
            0xC27C65D9,
            0x00000000,
            0x80000000,
            0x3F800000,
            0xBF800000,
            0x42AFFFFF,
            0xC2AFFFFF,
            0x3A83126F,
            0xC1200000,
        ];
        float* x = stackalloc float[Vector256<float>.Count];
        for (int start = 0; start < probes.Length; start += Vector256<float>.Count)
        {
            for (int i = 0; i < Vector256<float>.Count; i++)
                x[i] = BitConverter.UInt32BitsToSingle(probes[Math.Min(start + i, probes.Length - 1)]);
            Vector256<float> y = Exp(Vector256.Load(x));
            for (int i = 0; i < Vector256<float>.Count; i++)
            {
                if (
                    BitConverter.SingleToUInt32Bits(y.GetElement(i)) != BitConverter.SingleToUInt32Bits(MathF.Exp(x[i]))
                )
                    return false;
            }
        }
        return true;
    }
}
