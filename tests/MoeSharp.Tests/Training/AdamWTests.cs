using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Tests.Training;

public sealed class AdamWTests
{
    [Fact]
    public void Matches_the_AdamW_formula_over_two_steps()
    {
        var p = new Parameter("w", Tensor.FromArray([1f, -2f], 2));
        var opt = new AdamW([p], learningRate: 0.1f, beta1: 0.9f, beta2: 0.99f, epsilon: 1e-8f, weightDecay: 0.1f);
        double[] theta = [1, -2],
            m = [0, 0],
            v = [0, 0];
        double[][] grads =
        [
            [0.5, -1],
            [0.25, 3],
        ];
        for (int step = 1; step <= 2; step++)
        {
            grads[step - 1].Select(g => (float)g).ToArray().CopyTo(p.Grad.AsSpan<float>());
            opt.Step();
            for (int i = 0; i < 2; i++)
            {
                double g = grads[step - 1][i];
                theta[i] *= 1 - (0.1 * 0.1);
                m[i] = (0.9 * m[i]) + (0.1 * g);
                v[i] = (0.99 * v[i]) + (0.01 * g * g);
                double mHat = m[i] / (1 - Math.Pow(0.9, step)),
                    vHat = v[i] / (1 - Math.Pow(0.99, step));
                theta[i] -= 0.1 * mHat / (Math.Sqrt(vHat) + 1e-8);
                Assert.Equal(theta[i], p.Value.AsSpan<float>()[i], 5);
            }
        }
        opt.ZeroGrad();
        Assert.All(p.Grad.AsSpan<float>().ToArray(), g => Assert.Equal(0f, g));
    }

    [Fact]
    public void Duplicate_names_are_rejected()
    {
        var a = new Parameter("w", Tensor.Zeros(DType.Float32, 1));
        var b = new Parameter("w", Tensor.Zeros(DType.Float32, 1));
        Assert.Equal("parameters", Assert.Throws<ArgumentException>(() => new AdamW([a, b])).ParamName);
    }
}
