using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>The layer's element-wise kernels: the experts' SwiGLU and its backward, and adding row blocks.</summary>
public interface IElementwiseKernels
{
    /// <summary><c>activation = silu(gate) ⊙ up</c> element-wise (as <see cref="HostSwiGlu.Forward"/>).</summary>
    /// <param name="gate">g = x·w1ᵀ.</param>
    /// <param name="up">u = x·w3ᵀ.</param>
    /// <param name="activation">Output, the same element count.</param>
    void SwiGluForward(Tensor gate, Tensor up, Tensor activation);

    /// <summary>Gradients of gate and up from the activation's (as <see cref="HostSwiGlu.Backward"/>).</summary>
    /// <param name="gradActivation">Gradient of the activation.</param>
    /// <param name="gate">The forward's g.</param>
    /// <param name="up">The forward's u.</param>
    /// <param name="gradGate">Output: gradient of g.</param>
    /// <param name="gradUp">Output: gradient of u.</param>
    void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp);

    /// <summary><c>into[intoRow…+rows.Rows] += rows</c>, element-wise.</summary>
    /// <param name="into">The tensor added to.</param>
    /// <param name="intoRow">Its first row that <paramref name="rows"/> lands on.</param>
    /// <param name="rows">The rows added.</param>
    void AddRows(Tensor into, int intoRow, Tensor rows);
}
