using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// bfloat16 bit arithmetic for kernels: values widen exactly to float32, and a float32 is rounded back with
/// <c>BFloat16.FromSingle</c>'s rule (nearest even; a NaN stays a quiet NaN), so kernels match the host bit for bit.
/// Words hold two values: element 2i in the low half. The row kernels reach these through <see
/// cref="BFloat16DeviceRow"/>.
/// </summary>
internal static class BFloat16KernelBodies
{
    /// <summary>The float32 value of the bfloat16 in the low half of <paramref name="bits"/>.</summary>
    public static float Low(uint bits) => Interop.IntAsFloat(bits << 16);

    /// <summary>The float32 value of the bfloat16 in the high half of <paramref name="bits"/>.</summary>
    public static float High(uint bits) => Interop.IntAsFloat(bits & 0xFFFF0000u);

    /// <summary><paramref name="value"/> rounded to bfloat16 (its 16 bits in the low half).</summary>
    public static uint Round(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (bits >> 16) | 0x0040u;
        return (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    }
}
