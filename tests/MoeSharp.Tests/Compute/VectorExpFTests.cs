using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MoeSharp.Compute;

namespace MoeSharp.Tests.Compute;

public sealed class VectorExpFTests
{
    [Fact]
    public void On_linux_with_avx2_the_vectors_are_in_use()
    {
        // glibc's expf is what the vectors reproduce: a failed probe there means the table or the order broke.
        Assert.True(VectorExpF.IsAvailable || !(OperatingSystem.IsLinux() && Avx2.IsSupported));
    }

    [Fact]
    public void Every_lane_is_bitwise_MathF_Exp_over_a_sweep_of_float32_words()
    {
        if (!VectorExpF.IsAvailable)
            return; // no AVX2 or another C library: the kernels call MathF.Exp (the test above covers glibc hosts)
        var x = new float[Vector256<float>.Count];
        int compared = 0;
        // Every 4099th word (both signs, every exponent, the special branch, NaNs and infinities), in lanes of eight.
        for (ulong w = 0; w < 0x1_0000_0000UL; w += 4099UL * (ulong)x.Length)
        {
            for (int i = 0; i < x.Length; i++)
                x[i] = BitConverter.UInt32BitsToSingle((uint)(w + ((ulong)i * 4099UL)));
            Vector256<float> y = VectorExpF.Exp(Vector256.Create(x));
            for (int i = 0; i < x.Length; i++)
            {
                uint expected = BitConverter.SingleToUInt32Bits(MathF.Exp(x[i]));
                uint actual = BitConverter.SingleToUInt32Bits(y.GetElement(i));
                if (actual != expected)
                    Assert.Fail(
                        $"exp({x[i]:R} = 0x{BitConverter.SingleToUInt32Bits(x[i]):X8}) gave 0x{actual:X8}, MathF 0x{expected:X8}"
                    );
                compared++;
            }
        }
        Assert.True(compared > 1_000_000, $"{compared} words compared");
    }
}
