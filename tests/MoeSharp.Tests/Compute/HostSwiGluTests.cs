using MoeSharp.Compute;

namespace MoeSharp.Tests.Compute;

public sealed class HostSwiGluTests
{
    // Not a multiple of eight (a scalar tail after the vectors), and large enough to be split over threads.
    private const int Length = 100_003;

    [Fact]
    public void Forward_is_bitwise_the_scalar_formula_on_every_element()
    {
        var (gate, up, _) = Inputs();
        var activation = new float[Length];
        HostSwiGlu.Forward(gate, up, activation);
        for (int i = 0; i < Length; i++)
        {
            float expected = gate[i] / (1f + MathF.Exp(-gate[i])) * up[i];
            AssertSameBits(expected, activation[i], "a", i, gate[i]);
        }
    }

    [Fact]
    public void Backward_is_bitwise_the_scalar_formula_on_every_element()
    {
        var (gate, up, gradActivation) = Inputs();
        var gradGate = new float[Length];
        var gradUp = new float[Length];
        HostSwiGlu.Backward(gradActivation, gate, up, gradGate, gradUp);
        for (int i = 0; i < Length; i++)
        {
            float g = gate[i];
            float sig = 1f / (1f + MathF.Exp(-g));
            float da = gradActivation[i];
            AssertSameBits(da * g * sig, gradUp[i], "du", i, g);
            AssertSameBits(da * up[i] * sig * (1f + (g * (1f - sig))), gradGate[i], "dg", i, g);
        }
    }

    private static (float[] Gate, float[] Up, float[] GradActivation) Inputs()
    {
        var random = new Random(12);
        var gate = new float[Length];
        var up = new float[Length];
        var gradActivation = new float[Length];
        for (int i = 0; i < Length; i++)
        {
            // Mostly the usual range, some beyond exp's special branch (|x| ≥ 88), and the odd infinity and NaN.
            gate[i] = (i % 97) switch
            {
                0 => (float)(random.NextDouble() * 400 - 200),
                1 => float.PositiveInfinity,
                2 => float.NegativeInfinity,
                3 => float.NaN,
                _ => (float)(random.NextDouble() * 24 - 12),
            };
            up[i] = (float)(random.NextDouble() * 4 - 2);
            gradActivation[i] = (float)(random.NextDouble() * 2 - 1);
        }
        return (gate, up, gradActivation);
    }

    private static void AssertSameBits(float expected, float actual, string what, int i, float gate)
    {
        if (BitConverter.SingleToUInt32Bits(expected) != BitConverter.SingleToUInt32Bits(actual))
            Assert.Fail($"{what}[{i}] (gate {gate:R}): {actual:R}, the scalar formula {expected:R}");
    }
}
