using MoeSharp.Tensors;

namespace MoeSharp.Training;

/// <summary>A named trainable float32 tensor and its gradient (same shape), as an optimizer sees it.</summary>
public sealed class Parameter
{
    /// <summary>Creates a parameter with a zero gradient.</summary>
    /// <param name="name">Name, e.g. <c>experts.w1</c> (unique within an optimizer).</param>
    /// <param name="value">The tensor updated in place (float32).</param>
    /// <exception cref="ArgumentException">The tensor is not float32 or the name is empty.</exception>
    public Parameter(string name, Tensor value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(value);
        if (value.DType != DType.Float32)
        {
            throw new ArgumentException($"parameter '{name}' must be float32 but is {value}", nameof(value));
        }
        Name = name;
        Value = value;
        Grad = Tensor.Zeros(DType.Float32, value.ShapeArray());
    }

    /// <summary>The parameter's name.</summary>
    public string Name { get; }

    /// <summary>The values, updated in place by the optimizer.</summary>
    public Tensor Value { get; }

    /// <summary>The gradient buffer: write or accumulate into it before a step.</summary>
    public Tensor Grad { get; }
}
