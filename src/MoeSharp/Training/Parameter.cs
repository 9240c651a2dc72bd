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
        : this(
            name,
            value,
            Tensor.Zeros(DType.Float32, (value ?? throw new ArgumentNullException(nameof(value))).ShapeArray())
        ) { }

    /// <summary>Creates a parameter whose gradient lives in <paramref name="grad"/> (e.g. on the value's
    /// device).</summary>
    /// <param name="name">Name, e.g. <c>experts.w1</c> (unique within an optimizer).</param>
    /// <param name="value">The tensor updated in place (float32).</param>
    /// <param name="grad">Its gradient: float32, the same shape and device.</param>
    /// <exception cref="ArgumentException">A tensor is not float32, the shapes or devices differ, or the name is
    /// empty.</exception>
    public Parameter(string name, Tensor value, Tensor grad)
        : this(name, value, () => grad)
    {
        ArgumentNullException.ThrowIfNull(grad);
        _ = Grad; // checked now, not at first use
    }

    /// <summary>
    /// Creates a parameter whose gradient buffer <paramref name="createGrad"/> allocates on first use of
    /// <see cref="Grad"/>, so a layer that only runs forward (inference) never holds gradient memory.
    /// </summary>
    /// <param name="name">Name, e.g. <c>experts.w1</c> (unique within an optimizer).</param>
    /// <param name="value">The tensor updated in place (float32).</param>
    /// <param name="createGrad">Allocates the gradient: float32, the value's shape and device (checked when
    /// called).</param>
    /// <exception cref="ArgumentException">The value is not float32 or the name is empty.</exception>
    public Parameter(string name, Tensor value, Func<Tensor> createGrad)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(createGrad);
        if (value.DType != DType.Float32)
        {
            throw new ArgumentException($"parameter '{name}' must be float32 but is {value}", nameof(value));
        }
        Name = name;
        Value = value;
        _grad = new Lazy<Tensor>(() =>
        {
            Tensor grad =
                createGrad()
                ?? throw new InvalidOperationException($"the gradient factory of parameter '{name}' returned null");
            if (grad.DType != DType.Float32 || !grad.Shape.SequenceEqual(value.Shape) || grad.Device != value.Device)
            {
                throw new ArgumentException(
                    $"the gradient of parameter '{name}' must be float32 {value.ShapeString} on {value.Device}; got "
                        + $"{grad} on {grad.Device}",
                    "grad"
                );
            }
            return grad;
        });
    }

    private readonly Lazy<Tensor> _grad;

    /// <summary>The parameter's name.</summary>
    public string Name { get; }

    /// <summary>The values, updated in place by the optimizer.</summary>
    public Tensor Value { get; }

    /// <summary>The gradient buffer (allocated on first use): write or accumulate into it before a step.</summary>
    public Tensor Grad => _grad.Value;

    /// <summary>A bfloat16 copy the optimizer keeps current with the values, if the parameter's owner keeps one
    /// (the padded experts' weights on a device).</summary>
    internal BFloat16Shadow? Shadow { get; set; }

    /// <summary>The gradient if it was allocated, else null (releasing it must not allocate it first).</summary>
    internal Tensor? AllocatedGrad => _grad.IsValueCreated ? _grad.Value : null;
}
