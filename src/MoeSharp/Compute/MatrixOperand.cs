using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// One operand of an <see cref="IGemmKernels"/> product: a row-major float32 tensor and where the matrix starts in it.
/// For an activation operand <paramref name="Offset"/> is the first row of a block of a <c>[R, ·]</c> tensor; for a
/// weight operand it is the index of the matrix in a <c>[E, ·, ·]</c> stack (0 for a plain <c>[·, ·]</c> matrix).
/// Which of the two an operand is follows from the product (each method's documentation says).
/// </summary>
/// <param name="Tensor">The tensor that holds the matrix.</param>
/// <param name="Offset">First row (a row block) or matrix index (a stack); 0 for the start of the tensor.</param>
public readonly record struct MatrixOperand(Tensor Tensor, int Offset = 0)
{
    /// <summary>The whole tensor from its start: row 0, or matrix 0 of a stack.</summary>
    /// <param name="tensor">The tensor.</param>
    public static implicit operator MatrixOperand(Tensor tensor) => new(tensor);

    /// <summary>
    /// The element where this operand starts when each step of <see cref="Offset"/> (one row or one matrix) is
    /// <paramref name="elementsPerStep"/> elements long; in 64 bits, so a far block of a large tensor cannot wrap.
    /// </summary>
    /// <param name="elementsPerStep">Row length for a row block, rows × columns for a matrix of a stack.</param>
    /// <exception cref="ArgumentOutOfRangeException">The offset or step is negative.</exception>
    public long FirstElement(long elementsPerStep)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(Offset, nameof(Offset));
        ArgumentOutOfRangeException.ThrowIfNegative(elementsPerStep);
        return Offset * elementsPerStep;
    }

    /// <summary>
    /// The host elements of this operand: <paramref name="length"/> floats from <see cref="FirstElement"/>.
    /// </summary>
    /// <param name="elementsPerStep">Row length for a row block, rows × columns for a matrix of a stack.</param>
    /// <param name="length">Elements the matrix covers.</param>
    /// <exception cref="ArgumentOutOfRangeException">The matrix does not lie inside the tensor.</exception>
    public Span<float> HostSpan(long elementsPerStep, long length)
    {
        long first = FirstElement(elementsPerStep);
        Span<float> all = Tensor.AsSpan<float>();
        if (length < 0 || first + length > all.Length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length),
                $"elements [{first}, {first + length}) are not inside {Tensor.DType} {Tensor.ShapeString}"
            );
        }
        return all.Slice((int)first, (int)length);
    }
}
