# grade_id: forward_and_backward
# expect: forward_and_backward=0 others=full
# mistakes: forward_and_backward=backward_wrong_tensors
def forward_and_backward(inp, targ):
    l1 = lin(inp, w1, b1)
    l2 = relu(l1)
    out = lin(l2, w2, b2)
    mse_grad(out, targ)
    lin_grad(l1, out, w2, b2)
    relu_grad(l1, l2)
    lin_grad(inp, l1, w1, b1)
